/* A stand-in for an ad pixel: sets the cookies a real one would, and says that it ran. */
(function () {
  'use strict';
  const days90 = 90 * 86400;
  document.cookie = '_fbp=fb.1.' + Date.now() + '; Path=/; Max-Age=' + days90 + '; SameSite=Lax';
  document.cookie = '_gcl_au=1.1.' + Date.now() + '; Path=/; Max-Age=' + days90 + '; SameSite=Lax';
  const status = document.querySelector('[data-demo-status="advertising"]');
  if (status) status.textContent = 'running: set _fbp and _gcl_au';
  window.demoPixel = true;
})();
