/* The demo shop's own script: shows the visitor's choice and the cookies the page can see. */
(function () {
  'use strict';

  /** Show the current choice and cookies in the status panel. */
  function show() {
    const choice = window.consent && window.consent.get();
    const names = document.cookie.split('; ').map((c) => c.split('=')[0]).filter(Boolean);
    const set = (key, text) => {
      const node = document.querySelector('[data-demo-status="' + key + '"]');
      if (node) node.textContent = text;
    };
    set('choice', choice ? Object.keys(choice).filter((k) => choice[k]).join(', ') : 'none yet');
    set('cookies', names.length ? names.join(', ') : 'none');
  }

  document.addEventListener('consent:change', show);
  window.addEventListener('load', show);
})();
