/* consent banner: regimes, categories, blocked scripts and embeds, Consent Mode v2, GPC, and a logged choice.
 * Served by GET /s/<site>/banner.js with the site's configuration in place of the marker below. */
(function () {
  'use strict';

  const CONFIG = /*__CONSENT_CONFIG__*/ null;
  // Loaded twice: keep the first. (An element with id="consent" also shows up as window.consent.)
  if (!CONFIG || (window.consent && window.consent.get)) return;

  const COOKIE = 'consent';
  const OPTIONAL = ['functional', 'analytics', 'advertising'];
  // opt-in | opt-out | notice | none, resolved for this visitor's region when the script was served.
  // (The service always writes the regime keys, defaults filled in: a site without regions is opt-in.)
  const REGIME = CONFIG.regime;
  const OPT_IN = REGIME === 'opt-in';
  const OPT_OUT = REGIME === 'opt-out';
  // The oldest revision whose refusals still hold: a later one added a category or purpose.
  const PURPOSES = CONFIG.purposes_revision;
  const QUEUE_KEY = 'consent.pending.' + CONFIG.site;
  const PROOF_KEY = 'consent.proof.' + CONFIG.site;
  const DAY_MS = 864e5;
  const ENDPOINT = CONFIG.api + '/api/v1/sites/' + CONFIG.site + '/consents';
  const BLOCKED_SCRIPT = 'script[type="text/plain"][data-consent]';
  const BLOCKED_FRAME = 'iframe[data-consent][data-src]';
  const CSS = `
:host{all:initial;display:block;--c-bg:var(--consent-bg,#fff);--c-fg:var(--consent-fg,#1f2328);--c-m:var(--consent-muted,#4b535d);
--c-a:var(--consent-accent,#1d4ed8);--c-af:var(--consent-accent-fg,#fff);--c-f:var(--consent-focus,#b45309);
--c-r:var(--consent-radius,6px);font:var(--consent-font,15px/1.5 system-ui,sans-serif);color:var(--c-fg)}
*{box-sizing:border-box;font:inherit;color:inherit}
.layer,dialog,.ph{background:var(--c-bg);color:var(--c-fg);border:1px solid var(--c-m);box-shadow:0 4px 24px #0004}
.layer{position:fixed;z-index:2147483646;overflow:auto;max-height:100%;padding:1rem 1.25rem;animation:c-in .25s ease-out}
.bar{left:0;right:0;bottom:0;border-width:1px 0 0}
.box{left:50%;top:50%;translate:-50% -50%;width:min(34rem,calc(100% - 1rem));max-height:calc(100% - 1rem);border-radius:var(--c-r)}
[hidden]{display:none}
h2{font-size:1.15em;font-weight:700;margin:0 0 .4rem}
p{margin:0 0 .75rem}
a{color:var(--c-a)}
.row{display:grid;grid-template-columns:repeat(auto-fit,minmax(9.5em,1fr));gap:.5rem}
button{cursor:pointer;border-radius:var(--c-r);padding:.6rem 1rem;border:2px solid var(--c-a);background:var(--c-a);color:var(--c-af);font-weight:600;min-height:44px}
:focus-visible{outline:3px solid var(--c-f);outline-offset:2px}
.layer:focus{outline:0}
.note{border-left:4px solid var(--c-a);padding-left:.6rem}
dialog{width:min(42rem,calc(100% - 1rem));max-height:calc(100% - 1rem);padding:0;border-radius:var(--c-r)}
dialog[open]{display:flex;flex-direction:column}
dialog::backdrop{background:#0008}
.head,.foot,.body{padding:.75rem 1.25rem}
.head{display:flex;align-items:center;justify-content:space-between;border-bottom:1px solid var(--c-m)}
.head h2{margin:0}
.head button{padding:.3rem .8rem}
.foot{border-top:1px solid var(--c-m)}
.body{overflow:auto}
.cat{border-top:1px solid var(--c-m);padding:.6rem 0}
label{display:flex;gap:.6rem;align-items:center;font-weight:700}
input{width:1.3rem;height:1.3rem;margin:0;accent-color:var(--c-a)}
.cat p{margin:.25rem 0;color:var(--c-m)}
details{overflow-x:auto}
table{width:100%;border-collapse:collapse;font-size:.9em}
th,td{text-align:left;vertical-align:top;padding:.25rem;border-bottom:1px solid var(--c-m)}
summary{cursor:pointer;color:var(--c-a);margin:.25rem 0}
.ph{display:flex;flex-direction:column;justify-content:center;gap:.75rem;padding:1rem;height:100%;border-radius:var(--c-r)}
.ph p{margin:0}
.ph div{display:flex;flex-wrap:wrap;gap:.5rem}
@keyframes c-in{from{transform:translateY(1rem)}}
@media (prefers-reduced-motion:reduce){*{animation:none!important}}
`;

  // Global Privacy Control, as the page sees it or as the browser sent it with the request for this script.
  const gpc = navigator.globalPrivacyControl === true || CONFIG.sec_gpc;
  const dnt = navigator.doNotTrack === '1' || window.doNotTrack === '1';
  // Where advertising starts refused: GPC or DNT under opt-in; GPC (a legal opt-out) under opt-out.
  const adsOff = OPT_IN ? gpc || dnt : OPT_OUT && gpc;
  /** @type {{id:string, receipt:string, revision:number, choices:Object<string,boolean>, action:string, given:string}|null} */
  let state = readCookie();
  /** Every optional category but advertising where it starts refused: Accept all, and what opt-out, notice and none imply. */
  const all = { functional: true, analytics: true, advertising: !adsOff };
  /** The choices in force: stored, else what the regime implies (null under opt-in: nothing granted). */
  let current = isValid(state) ? state.choices : OPT_IN ? null : all;
  /** Whether the first layer waits for the visitor: no stored choice (or dismissed notice) holds, and the regime asks. */
  let asking = !isValid(state) && REGIME !== 'none';
  const lang = pickLanguage();
  const listeners = [];
  const started = new WeakSet();
  const framed = new WeakSet();
  const scriptQueue = [];
  let scriptRunning = false;
  let sheet = null;
  let ui = null;
  let flushing = false;
  let memoryQueue = [];
  let details = null;

  // ---- small pure functions ----

  /** Text `key` in the visitor's language. @param {string} key @return {string} */
  function t(key) {
    return CONFIG.texts[lang][key] || '';
  }

  /** ISO 8601 of a time in ms. @param {number} ms @return {string} */
  function iso(ms) {
    return new Date(ms).toISOString();
  }

  /** A random UUID v4, also outside secure contexts. @return {string} */
  function uuid() {
    if (crypto.randomUUID) return crypto.randomUUID();
    // Outside secure contexts: version 4 and variant bits set by hand.
    const hex = Array.from(crypto.getRandomValues(new Uint8Array(16)), (x, i) =>
      (i === 6 ? (x & 15) | 64 : i === 8 ? (x & 63) | 128 : x).toString(16).padStart(2, '0')).join('');
    return hex.replace(/(.{8})(.{4})(.{4})(.{4})/, '$1-$2-$3-$4-');
  }

  /** First site language matching ?lang, <html lang>, then navigator.languages; else the default. @return {string} */
  function pickLanguage() {
    const wanted = [new URLSearchParams(location.search).get('lang'), document.documentElement.lang].concat(navigator.languages || [navigator.language]);
    for (const w of wanted) {
      if (!w) continue;
      const low = w.toLowerCase();
      const hit = CONFIG.languages.find((l) => l.toLowerCase() === low) ||
        CONFIG.languages.find((l) => l.split('-')[0].toLowerCase() === low.split('-')[0]);
      if (hit) return hit;
    }
    return CONFIG.languages[0];
  }

  /** Whether every category in a space-separated list is granted. @param {string} list @return {boolean} */
  function allowed(list) {
    return list.split(/\s+/).filter(Boolean).every((c) => c === 'necessary' || !!(current && current[c]));
  }

  /** Choices with every optional category present as a boolean. @param {Object} given @return {Object} */
  function complete(given) {
    const out = {};
    for (const c of OPTIONAL) out[c] = !!(given && given[c]);
    return out;
  }

  // ---- the consent cookie ----

  /** The parsed consent cookie, or null. @return {Object|null} */
  function readCookie() {
    const raw = document.cookie.split('; ').find((c) => c.startsWith(COOKIE + '='));
    if (!raw) return null;
    const fields = {};
    for (const part of raw.slice(COOKIE.length + 1).split('|')) {
      const at = part.indexOf(':');
      if (at > 0) fields[part.slice(0, at)] = part.slice(at + 1);
    }
    if (fields.v !== '1' || !fields.given) return null;
    const choices = {};
    for (const c of OPTIONAL) choices[c] = fields[c] === '1';
    return { id: fields.id || '', receipt: fields.receipt || '', revision: +fields.revision, choices: choices, action: fields.action || '', given: fields.given };
  }

  /** Whether a stored choice is a refusal: an opt-out, or nothing optional granted. @return {boolean} */
  function isRefusal(s) {
    return s.action === 'opt_out' || !OPTIONAL.some((c) => s.choices[c]);
  }

  /** When a stored choice lapses (ms): a refusal lasts reask_days, and at least as long as a consent. @return {number} */
  function expiry(s) {
    return Date.parse(s.given) + (isRefusal(s) ? Math.max(CONFIG.reask_days, CONFIG.max_age_days) : CONFIG.max_age_days) * DAY_MS;
  }

  /**
   * Whether a stored choice still holds: not lapsed, and the same revision, or for a refusal any revision
   * since the last that added a purpose. A dismissed notice is no answer to an opt-in banner, nor is an
   * opt-out made where the rest ran without consent.
   * @return {boolean}
   */
  function isValid(s) {
    return !!s && !(OPT_IN && (s.action === 'dismiss' || s.action === 'opt_out')) && (isRefusal(s) ? s.revision >= PURPOSES : s.revision === CONFIG.revision) && expiry(s) > Date.now();
  }

  /** Store `state` in the first-party consent cookie. */
  function writeCookie() {
    const expires = expiry(state);
    const parts = ['v:1', 'id:' + state.id, 'receipt:' + state.receipt, 'revision:' + state.revision];
    for (const c of OPTIONAL) parts.push(c + ':' + (state.choices[c] ? 1 : 0));
    parts.push('action:' + state.action, 'given:' + state.given, 'expires:' + iso(expires));
    let cookie = COOKIE + '=' + parts.join('|') + '; Path=/; SameSite=Lax; Max-Age=' + Math.max(0, Math.floor((expires - Date.now()) / 1000));
    if (CONFIG.cookie_domain) cookie += '; Domain=' + CONFIG.cookie_domain;
    if (location.protocol === 'https:') cookie += '; Secure';
    document.cookie = cookie;
  }

  /** Delete the page-reachable cookies declared for the refused categories (host and parent domains, path /). */
  function deleteRefusedCookies() {
    const refused = CONFIG.cookies.filter((c) => c.category !== 'necessary' && !allowed(c.category));
    const host = location.hostname.split('.');
    const domains = [''];
    for (let i = 0; i < host.length - 1; i++) domains.push('; Domain=' + host.slice(i).join('.'));
    for (const pair of document.cookie.split('; ')) {
      const name = pair.split('=')[0];
      if (!name || name === COOKIE || !refused.some((c) => matches(c, name))) continue;
      for (const d of domains) document.cookie = name + '=; Max-Age=0; Path=/' + d;
    }
  }

  /** Whether a browser cookie `name` is the declared cookie `c` (exact, prefix or regex). @return {boolean} */
  function matches(c, name) {
    if (c.match === 'prefix') return name.startsWith(c.name);
    if (c.match === 'regex') {
      try {
        return new RegExp('^(?:' + c.name + ')$').test(name);
      } catch (e) {
        return false;
      }
    }
    return name === c.name;
  }

  // ---- delivery: fetch keepalive, sendBeacon, and a queue in localStorage ----

  /** The records waiting for delivery. @return {Array<Object>} */
  function loadQueue() {
    try {
      const parsed = JSON.parse(localStorage.getItem(QUEUE_KEY) || '[]');
      return Array.isArray(parsed) ? parsed : [];
    } catch (e) {
      return memoryQueue;
    }
  }

  /** Persist the waiting records. @param {Array<Object>} queue */
  function saveQueue(queue) {
    memoryQueue = queue;
    try {
      if (queue.length) localStorage.setItem(QUEUE_KEY, JSON.stringify(queue));
      else localStorage.removeItem(QUEUE_KEY);
    } catch (e) {}
  }

  /** The record as sent: this visitor's consent ID and latest receipt filled in when known. @return {string} */
  function body(record) {
    const out = Object.assign({}, record);
    if (state && state.id) {
      out.consent_id = state.id;
      out.receipt = state.receipt;
    }
    return JSON.stringify(out);
  }

  /** Send waiting records oldest first; stop at the first that cannot be delivered now. */
  function flush() {
    if (flushing) return;
    const record = loadQueue()[0];
    if (!record) return;
    flushing = true;
    fetch(ENDPOINT, { method: 'POST', body: body(record), headers: { 'Content-Type': 'text/plain' }, keepalive: true, credentials: 'omit' })
      .then((r) => {
        if (r.status >= 500 || r.status === 429) throw new Error('retry later');
        if (r.status === 403 && state && state.id) {
          // The stored receipt is no longer accepted: start a new consent history with this record.
          state.id = state.receipt = '';
          return { retry: true };
        }
        // Refused for good (422, 413...): keeping it would block every later record.
        if (!r.ok) return null;
        return r.json();
      })
      .then((answer) => {
        flushing = false;
        if (answer && answer.retry) return flush();
        if (answer && state && answer.consent_id) {
          state.id = answer.consent_id;
          state.receipt = answer.receipt;
          writeCookie();
        }
        // The shareable proof (no token in it) with the newest signed head: the visitor keeps it.
        try {
          if (answer && answer.proof) localStorage.setItem(PROOF_KEY, JSON.stringify(answer.proof));
        } catch (e) {}
        drop(record);
        flush();
      })
      .catch(() => {
        flushing = false;
      });
  }

  /** Remove a delivered record from the queue. */
  function drop(record) {
    saveQueue(loadQueue().filter((r) => r.event_id !== record.event_id));
  }

  // ---- Google Consent Mode v2 ----

  /** gtag's own shape: an `arguments` object pushed to dataLayer. */
  function gtag() {
    window.dataLayer = window.dataLayer || [];
    window.dataLayer.push(arguments);
  }

  /** Consent Mode states for `choices` (null or false: all denied; true: all granted). @return {Object<string,string>} */
  function consentMode(choices) {
    const g = (c) => (choices === true || (choices && choices[c]) ? 'granted' : 'denied');
    return {
      ad_storage: g('advertising'), ad_user_data: g('advertising'), ad_personalization: g('advertising'),
      analytics_storage: g('analytics'), functionality_storage: g('functional'), personalization_storage: g('functional'),
      security_storage: 'granted',
    };
  }

  // ---- blocked scripts and embeds ----

  /** Queue every blocked script whose categories are granted, in document order, and run the queue. */
  function releaseScripts() {
    for (const s of document.querySelectorAll(BLOCKED_SCRIPT)) {
      if (!started.has(s) && allowed(s.dataset.consent)) {
        started.add(s);
        scriptQueue.push(s);
      }
    }
    runNextScript();
  }

  /** Revive one script at a time; an external one must load before the next runs. */
  function runNextScript() {
    if (scriptRunning) return;
    const old = scriptQueue.shift();
    if (!old) return;
    if (!old.isConnected) return runNextScript();
    const fresh = document.createElement('script');
    for (const a of old.attributes) if (a.name !== 'type') fresh.setAttribute(a.name, a.value);
    if (old.dataset.type) fresh.type = old.dataset.type;
    // The nonce attribute reads "" once the page has loaded; the property keeps it.
    fresh.nonce = old.nonce;
    if (old.src) {
      scriptRunning = true;
      fresh.onload = fresh.onerror = () => {
        scriptRunning = false;
        runNextScript();
      };
    } else {
      fresh.text = old.text;
    }
    old.replaceWith(fresh);
    if (!old.src) runNextScript();
  }

  /** Load granted embeds; give the others a click-to-load placeholder. */
  function handleFrames() {
    for (const f of document.querySelectorAll(BLOCKED_FRAME)) {
      if (allowed(f.dataset.consent)) loadFrame(f);
      else if (!framed.has(f)) placeholder(f);
    }
  }

  /** Load an embed now and remove its placeholder. @param {HTMLIFrameElement} f */
  function loadFrame(f) {
    const src = f.dataset.src;
    f.removeAttribute('data-src');
    if (f.previousElementSibling && f.previousElementSibling.consentFrame === f) f.previousElementSibling.remove();
    f.hidden = false;
    // After the next frame: an embed from another site starts a renderer process, which on a busy
    // machine holds up the frame that shows the banner (in opt-out regions embeds load at once).
    requestAnimationFrame(() => setTimeout(() => { f.src = src; }));
  }

  /** An accessible placeholder in the embed's place, of the same size. @param {HTMLIFrameElement} f */
  function placeholder(f) {
    framed.add(f);
    const box = f.getBoundingClientRect();
    const host = document.createElement('div');
    host.consentFrame = f;
    const shown = getComputedStyle(f);
    // Sit where the embed sat: same box, same baseline (overflow makes an inline-block's baseline its bottom edge).
    Object.assign(host.style, {
      width: (box.width || +f.width || 300) + 'px', height: (box.height || +f.height || 150) + 'px',
      display: shown.display === 'inline' ? 'inline-block' : shown.display, verticalAlign: shown.verticalAlign, overflow: 'hidden',
    });
    let provider = f.dataset.provider;
    try {
      provider = provider || new URL(f.dataset.src, location.href).hostname.replace(/^www\./, '');
    } catch (e) {}
    const category = f.dataset.consent.split(/\s+/)[0];
    const text = t('blocked').replace('{provider}', provider).replace('{category}', CONFIG.categories.find((c) => c.key === category).label[lang]);
    const root = shadow(host);
    root.append(el('div', { class: 'ph', role: 'group', 'aria-label': text }, [
      el('p', {}, [text]),
      el('div', {}, [
        button('load', t('load_once'), () => loadFrame(f)),
        button('allow', t('always_allow'), () => choose('custom', Object.assign(complete(current), { [category]: true }))),
      ]),
    ]));
    f.hidden = true;
    f.before(host);
  }

  // ---- recording a choice ----

  /** Keep `choices` as the visitor's answer in the consent cookie. @param {string} action @param {Object} choices */
  function remember(action, choices) {
    current = complete(choices);
    asking = false;
    state = Object.assign({ id: '', receipt: '' }, state, { revision: CONFIG.revision, choices: current, action: action, given: iso(Date.now()) });
    writeCookie();
  }

  /**
   * Apply and record a choice: cookie, Consent Mode, scripts, embeds, cookie deletion, event, delivery.
   * @param {string} action accept_all | reject_all | custom | withdraw | opt_out
   * @param {Object<string,boolean>} choices
   */
  function choose(action, choices) {
    remember(action, choices);
    saveQueue(loadQueue().concat([{
      event_id: uuid(), action: action, choices: current, revision: CONFIG.revision, language: lang,
      page_url: location.origin + location.pathname, gpc: gpc, dnt: dnt,
    }]));
    hideAll();
    applyChoices();
    const detail = api.get();
    for (const fn of listeners) {
      try {
        fn(detail);
      } catch (e) {
        setTimeout(() => { throw e; });
      }
    }
    document.dispatchEvent(new CustomEvent('consent:change', { detail: detail }));
    flush();
  }

  /**
   * Opt out of the sale and sharing of personal information: advertising refused, the rest as it is.
   * Under opt-in, where the rest needs consent too, that is a choice like the preferences' own.
   */
  function optOut() {
    choose(OPT_IN ? 'custom' : 'opt_out', Object.assign(complete(current), { advertising: false }));
  }

  /** Close the notice: remembered for this revision, nothing recorded. */
  function dismiss() {
    remember('dismiss', current);
    hideAll();
  }

  /** Make the page follow `current`, and tell tag managers. */
  function applyChoices() {
    gtag('consent', 'update', consentMode(current));
    dataLayer.push({ event: 'consent_update', consent: api.get(), regime: REGIME });
    deleteRefusedCookies();
    releaseScripts();
    requestAnimationFrame(handleFrames);
  }

  // ---- the user interface, in an open shadow root ----

  /** A button that does `onclick`, marked with its action. @return {HTMLButtonElement} */
  function button(action, text, onclick) {
    return el('button', { type: 'button', 'data-action': action, onclick: onclick }, [text]);
  }

  /** Create an element. @param {string} tag @param {Object} attrs @param {Array} children @return {HTMLElement} */
  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    for (const k in attrs) {
      if (k.startsWith('on')) node.addEventListener(k.slice(2), attrs[k]);
      else if (attrs[k] !== false && attrs[k] != null) node.setAttribute(k, attrs[k] === true ? '' : attrs[k]);
    }
    node.append(...(children || []).filter((c) => c != null));
    return node;
  }

  /** An open shadow root on `host` carrying the banner's styles (CSP-safe where adoptable). @return {ShadowRoot} */
  function shadow(host) {
    const root = host.attachShadow({ mode: 'open' });
    if ('adoptedStyleSheets' in root && window.CSSStyleSheet) {
      if (!sheet) {
        sheet = new CSSStyleSheet();
        sheet.replaceSync(CSS);
      }
      root.adoptedStyleSheets = [sheet];
    } else {
      root.append(el('style', {}, [CSS]));
    }
    return root;
  }

  /** Three equal buttons: Accept all, Reject all (Withdraw once something is granted), and a third. @return {HTMLElement} */
  function buttons(third, withdrawing) {
    return el('div', { class: 'row' }, [
      button('accept', t('accept_all'), () => choose('accept_all', all)),
      button('reject', t(withdrawing ? 'withdraw' : 'reject_all'), () => choose(withdrawing ? 'withdraw' : 'reject_all', {})),
      third,
    ]);
  }

  /** Build the first layer and the preferences dialog once. */
  function buildUI() {
    if (ui) return ui;
    const host = el('div', { id: 'consent-banner', 'data-layout': CONFIG.layout });
    const root = shadow(host);
    const policy = el('a', { href: CONFIG.policy_url }, [t('policy')]);
    const notice = (id) => (adsOff ? el('p', { class: 'note', id: id }, [t('gpc_notice')]) : null);
    const customise = button('customise', t('customise'), () => open());
    // Opt-in: Accept all, Reject all, Customise. Opt-out: Do Not Sell or Share, Customise, OK. Notice: OK.
    const layer = el('section', { class: 'layer ' + CONFIG.layout, role: 'dialog', 'aria-labelledby': 'c-title', 'aria-describedby': adsOff ? 'c-intro c-note' : 'c-intro', tabindex: '-1', hidden: true, lang: lang }, [
      el('h2', { id: 'c-title' }, [t('title')]),
      el('p', { id: 'c-intro' }, [t(OPT_IN ? 'intro' : 'notice') + ' ', policy]),
      notice('c-note'),
      OPT_IN ? buttons(customise, false) : el('div', { class: 'row' }, [
        OPT_OUT ? button('opt-out', t('opt_out'), optOut) : null, OPT_OUT ? customise : null, button('ok', t('ok'), dismiss),
      ]),
    ]);
    const dialog = el('dialog', { 'aria-labelledby': 'c-prefs', 'aria-describedby': 'c-prefs-intro', lang: lang });
    dialog.addEventListener('close', closed);
    dialog.addEventListener('keydown', trapTab);
    root.append(layer, dialog);
    document.body.append(host);
    ui = { host: host, root: root, layer: layer, dialog: dialog, notice: notice, opener: null };
    // Showing, hiding and any change of size (text, viewport, zoom) resize the layer.
    if (CONFIG.layout === 'bar') new ResizeObserver(makeRoom).observe(layer);
    return ui;
  }

  /**
   * While the bar shows, keep what gets focus on the page clear of it (WCAG 2.2 SC 2.4.11):
   * the page's scroller pads its bottom by the bar's height, and the banner's host, last in the
   * page, grows by as much, so that the page's last controls can scroll above the bar. Nothing
   * on the page moves. Set through the CSSOM, which a Content-Security-Policy does not restrict.
   */
  function makeRoom() {
    const height = ui.layer.offsetHeight ? ui.layer.offsetHeight + 'px' : '';
    document.documentElement.style.scrollPaddingBottom = ui.host.style.height = height;
  }

  /** Fill the preferences dialog: toggles at once, descriptions and cookie tables once the inventory arrives. */
  function renderPreferences() {
    const d = ui.dialog;
    const shown = current || complete({});
    const toggles = {};
    const categories = CONFIG.categories.map((c) => {
      const fixed = c.key === 'necessary';
      toggles[c.key] = el('input', { type: 'checkbox', role: 'switch', id: 'c-' + c.key, checked: fixed || shown[c.key], disabled: fixed, 'aria-describedby': 'c-d-' + c.key });
      return el('div', { class: 'cat', 'data-category': c.key }, [
        el('label', { for: 'c-' + c.key }, [toggles[c.key], c.label[lang] + (fixed ? ' (' + t('always_on') + ')' : '')]),
        el('p', { id: 'c-d-' + c.key }),
        c.key === 'advertising' ? ui.notice('c-note-ad') : null,
      ]);
    });
    const who = el('div', { class: 'who' }, state && state.id ? [
      el('p', {}, [t('consent_id') + ': ', el('code', {}, [state.id])]),
      el('p', {}, [t('consent_date') + ': ' + new Date(state.given).toLocaleString(lang)]),
    ] : []);
    const save = button('save', t('save'), () => {
      const picked = {};
      for (const c of OPTIONAL) picked[c] = toggles[c].checked;
      choose('custom', picked);
    });
    d.replaceChildren(
      el('div', { class: 'head' }, [
        el('h2', { id: 'c-prefs' }, [t('preferences')]),
        el('button', { type: 'button', 'data-action': 'close', 'aria-label': t('close'), onclick: () => d.close() }, ['×']),
      ]),
      el('div', { class: 'body' }, [el('p', { id: 'c-prefs-intro' }, [t('intro')])].concat(categories, [who])),
      el('div', { class: 'foot' }, [buttons(save, !!current && OPTIONAL.some((c) => current[c]))]),
    );
    if (!details) details = fetch(CONFIG.api + '/api/v1/sites/' + CONFIG.site + '/inventory', { credentials: 'omit' })
      .then((r) => (r.ok ? r.json() : Promise.reject(r.status)));
    details.then(describe, () => { details = null; });
  }

  /** Add each category's description and cookies (name, provider, purpose, expiry), and the history link. */
  function describe(inventory) {
    const words = inventory.texts[lang];
    const who = ui.dialog.querySelector('.who');
    if (who && !who.querySelector('a')) {
      who.append(state && state.id && state.receipt
        ? el('p', {}, [el('a', { href: ENDPOINT + '/' + state.id + '?receipt=' + encodeURIComponent(state.receipt), download: '' }, [words.download])])
        : el('p', {}, [state && state.id ? '' : words.no_choice]));
      let proof;
      try {
        proof = localStorage.getItem(PROOF_KEY);
      } catch (e) {}
      if (proof) who.append(el('p', {}, [el('a', { href: 'data:,' + encodeURIComponent(proof), download: 'consent-proof.json' }, [words.download_proof])]));
    }
    for (const c of inventory.categories) {
      const box = ui.dialog.querySelector('[data-category="' + c.key + '"]');
      if (!box || box.querySelector('details')) continue;
      box.querySelector('#c-d-' + c.key).textContent = c.description[lang];
      const cookies = inventory.cookies.filter((k) => k.category === c.key);
      if (cookies.length) box.append(el('details', {}, [
        el('summary', {}, [words.cookies_used + ' (' + cookies.length + ')']),
        el('table', {}, [
          el('thead', {}, [el('tr', {}, ['name', 'provider', 'purpose', 'expiry'].map((k) => el('th', { scope: 'col' }, [words[k]])))]),
          el('tbody', {}, cookies.map((k) => el('tr', {}, [k.name + (k.match === 'prefix' ? '…' : ''), k.provider, k.purpose[lang], k.expiry.text[lang]].map((v) => el('td', {}, [v]))))),
        ]),
      ]));
    }
  }

  /** Keep Tab and Shift+Tab inside the open preferences. @param {KeyboardEvent} e */
  function trapTab(e) {
    if (e.key !== 'Tab') return;
    const items = Array.from(ui.dialog.querySelectorAll('button,a[href],input:not([disabled]),summary')).filter((n) => n.getClientRects().length);
    const first = items[0];
    const last = items[items.length - 1];
    const active = ui.root.activeElement;
    if (e.shiftKey ? active === first || !active : active === last || !active) {
      e.preventDefault();
      (e.shiftKey ? last : first).focus();
    }
  }

  /** The focused element, looking inside shadow roots. @return {Element|null} */
  function deepFocus() {
    let a = document.activeElement;
    while (a && a.shadowRoot && a.shadowRoot.activeElement) a = a.shadowRoot.activeElement;
    return a;
  }

  /** Open the preferences (the second layer). */
  function open() {
    whenBody(() => {
      buildUI();
      if (ui.dialog.open) return;
      ui.opener = deepFocus();
      renderPreferences();
      ui.layer.hidden = true;
      ui.dialog.showModal();
      const first = ui.dialog.querySelector('input:not([disabled]),button');
      if (first) first.focus();
    });
  }

  /** After the preferences close: back to the first layer if no choice holds, focus back where it was. */
  function closed() {
    if (asking) ui.layer.hidden = false;
    const back = ui.opener;
    ui.opener = null;
    if (back && back.isConnected && back.focus) back.focus();
    else if (asking) ui.layer.focus({ preventScroll: true });
  }

  /** Hide both layers. */
  function hideAll() {
    if (!ui) return;
    ui.layer.hidden = true;
    if (ui.dialog.open) ui.dialog.close();
  }

  /** Show the first layer; move focus to it unless the visitor is already somewhere on the page. */
  function showBanner() {
    buildUI();
    ui.layer.hidden = false;
    if (document.activeElement === document.body || !document.activeElement) ui.layer.focus({ preventScroll: true });
  }

  /** Run `fn` once document.body exists. @param {Function} fn */
  function whenBody(fn) {
    if (document.body) fn();
    else document.addEventListener('DOMContentLoaded', fn, { once: true });
  }

  // ---- undeclared cookies ----

  /** Once per visitor and revision, report the names (never the values) of page cookies the inventory lacks. */
  function reportUndeclared() {
    const flag = 'consent.reported.' + CONFIG.site + '.' + CONFIG.revision;
    try {
      if (localStorage.getItem(flag)) return;
      const names = document.cookie.split('; ').map((pair) => pair.split('=')[0])
        .filter((n) => /^[\w!#$%&'*+.^`|~-]{1,64}$/.test(n) && n !== COOKIE && !CONFIG.cookies.some((c) => matches(c, n)));
      if (!names.length) return;
      localStorage.setItem(flag, '1');
      fetch(CONFIG.api + '/api/v1/sites/' + CONFIG.site + '/undeclared', { method: 'POST', headers: { 'Content-Type': 'text/plain' },
        body: JSON.stringify({ names: names.slice(0, 50), page_path: location.pathname, revision: CONFIG.revision }),
        keepalive: true, credentials: 'omit', referrerPolicy: 'no-referrer' }).catch(() => {});
    } catch (e) {}
  }

  // ---- the public API ----

  const api = Object.freeze({
    /** The choices in force, or null before any (valid) choice. */
    get: () => (current ? Object.assign({ necessary: true }, current) : null),
    open: open,
    /** Withdraw every optional category: recorded, cookies deleted, change fired. */
    withdraw: () => choose('withdraw', {}),
    /** Subscribe to choices: on('change', fn). */
    on: (type, fn) => {
      if (type === 'change' && typeof fn === 'function') listeners.push(fn);
    },
    get id() {
      return (state && state.id) || null;
    },
    get date() {
      return state ? state.given : null;
    },
    get receipt() {
      return (state && state.receipt) || null;
    },
  });
  window.consent = api;

  // ---- start ----

  // Consent Mode defaults: one per region group the site maps, then the one for every other region.
  const mode = CONFIG.consent_mode;
  const wait = { wait_for_update: mode.wait_for_update };
  for (const r of mode.regions.concat(mode)) gtag('consent', 'default', Object.assign(consentMode(r.granted), r.region && { region: r.region }, wait));
  for (const k of ['ads_data_redaction', 'url_passthrough']) if (mode[k]) gtag('set', k, true);
  // GPC is an opt-out where the law makes it one: recorded once per visitor and revision, without a click.
  if (OPT_OUT && gpc && (asking || state.revision !== CONFIG.revision || state.action === 'dismiss')) optOut();
  else if (current) applyChoices();
  new MutationObserver((records) => {
    for (const r of records) {
      for (const n of r.addedNodes) {
        if (n.nodeType === 1 && (n.matches(BLOCKED_SCRIPT + ',' + BLOCKED_FRAME) || n.querySelector(BLOCKED_SCRIPT + ',' + BLOCKED_FRAME))) {
          if (current) releaseScripts();
          return requestAnimationFrame(handleFrames);
        }
      }
    }
  }).observe(document.documentElement, { childList: true, subtree: true });
  // Placeholders take the embeds' size once the page's styles apply: no frame is drawn before them.
  whenBody(() => {
    if (asking) showBanner();
    requestAnimationFrame(handleFrames);
  });
  document.addEventListener('click', (e) => {
    const target = e.target.closest && e.target.closest('[data-consent-open],[data-consent-withdraw],[data-consent-opt-out]');
    if (!target) return;
    e.preventDefault();
    if (target.hasAttribute('data-consent-open')) open();
    else if (target.hasAttribute('data-consent-withdraw')) api.withdraw();
    else optOut();
  });
  addEventListener('pagehide', () => {
    if (navigator.sendBeacon) for (const r of loadQueue()) navigator.sendBeacon(ENDPOINT, body(r));
  });
  setTimeout(flush, 0);
  // Cookies that tags set as the page loads are there a moment after load.
  const reportLater = () => setTimeout(reportUndeclared, 2000);
  if (document.readyState === 'complete') reportLater();
  else addEventListener('load', reportLater, { once: true });
})();
