/* A stand-in for an analytics tag: sets the cookies a real one would, and says that it ran. */
(function () {
  'use strict';
  const year = 365 * 86400;
  document.cookie = '_ga=GA1.1.' + Math.floor(Math.random() * 1e9) + '; Path=/; Max-Age=' + year + '; SameSite=Lax';
  document.cookie = '_gid=GA1.1.' + Math.floor(Math.random() * 1e9) + '; Path=/; Max-Age=86400; SameSite=Lax';
  document.cookie = '_hjSession_1234=1; Path=/; Max-Age=1800; SameSite=Lax';
  const status = document.querySelector('[data-demo-status="analytics"]');
  if (status) status.textContent = 'running: set _ga, _gid and _hjSession_1234';
  window.demoAnalytics = true;
})();
