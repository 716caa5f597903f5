/**
 * Cookie declaration widget: renders a site's cookie declaration and the
 * visitor's own consent into <div id="consent-declaration"> on a privacy page.
 *
 * Plain semantic HTML with no styles of its own, so it takes on the page's
 * fonts and colours. Every inventory text is set with textContent. The
 * visitor's choice comes from the banner's window.consent API.
 */
(function () {
  "use strict";

  // The service fills this in with the site's declaration when it serves the file.
  const DECLARATION = /* DECLARATION */ null;
  const CONTAINER_ID = "consent-declaration";
  const BANNER_WAIT_MS = 15000;
  const POLL_MS = 200;
  const SCRIPT = document.currentScript;

  if (!DECLARATION) return;

  /**
   * A new element with attributes and children (strings become text nodes).
   * @param {string} tag
   * @param {Object<string, string>} [attributes]
   * @param {Array<Node|string>} [children]
   * @returns {HTMLElement}
   */
  function element(tag, attributes, children) {
    const node = document.createElement(tag);
    Object.keys(attributes || {}).forEach(function (name) {
      node.setAttribute(name, attributes[name]);
    });
    (children || []).forEach(function (child) {
      node.append(typeof child === "string" ? document.createTextNode(child) : child);
    });
    return node;
  }

  /**
   * The site language matching `wanted` exactly, or by its primary subtag (nl-BE → nl).
   * @param {string|null|undefined} wanted
   * @returns {string|null}
   */
  function matchLanguage(wanted) {
    if (!wanted) return null;
    const code = String(wanted).trim().toLowerCase();
    const languages = DECLARATION.languages;
    return (
      languages.find(function (language) { return language.toLowerCase() === code; }) ||
      languages.find(function (language) { return language.split("-")[0].toLowerCase() === code.split("-")[0]; }) ||
      null
    );
  }

  /**
   * The language to show: the container's data-lang, ?lang, <html lang>, then the browser's.
   * @param {HTMLElement} container
   * @returns {string}
   */
  function pickLanguage(container) {
    const wanted = [
      container.getAttribute("data-lang"),
      new URLSearchParams(location.search).get("lang"),
      document.documentElement.lang,
    ].concat(navigator.languages || [navigator.language]);
    for (let i = 0; i < wanted.length; i++) {
      const language = matchLanguage(wanted[i]);
      if (language) return language;
    }
    return DECLARATION.languages[0];
  }

  /**
   * The service URL of `path`, resolved against where this script was loaded from.
   * @param {string} path
   * @returns {string}
   */
  function serviceUrl(path) {
    return new URL(DECLARATION.api + path, SCRIPT ? SCRIPT.src : location.href).href;
  }

  /**
   * A <time> element for an ISO timestamp, shown in `language` (date only if `dateOnly`).
   * @param {string} iso
   * @param {string} language
   * @param {boolean} dateOnly
   * @returns {HTMLElement}
   */
  function timeElement(iso, language, dateOnly) {
    let shown = dateOnly ? iso.slice(0, 10) : iso;
    if (!dateOnly) {
      try {
        shown = new Date(iso).toLocaleString(language, { dateStyle: "long", timeStyle: "short" });
      } catch (error) {
        // An engine without this locale or option keeps the ISO form.
      }
    }
    return element("time", { datetime: iso }, [shown]);
  }

  /**
   * A heading of the configured level (data-heading-level, 2 by default).
   * @param {HTMLElement} container
   * @param {string} text
   * @returns {HTMLElement}
   */
  function heading(container, text) {
    const level = Math.min(6, Math.max(1, parseInt(container.getAttribute("data-heading-level"), 10) || 2));
    return element("h" + level, {}, [text]);
  }

  /**
   * The table of a category's cookies: caption, column headers and one row header per cookie.
   * @param {Object} category
   * @param {Array<Object>} cookies
   * @param {Object<string, string>} texts
   * @param {string} language
   * @returns {HTMLElement}
   */
  function cookieTable(category, cookies, texts, language) {
    const columns = ["name", "provider", "purpose", "expiry"].map(function (key) {
      return element("th", { scope: "col" }, [texts[key]]);
    });
    const rows = cookies.map(function (cookie) {
      const name = element("code", {}, [cookie.name + (cookie.match === "prefix" ? "*" : "")]);
      return element("tr", {}, [
        element("th", { scope: "row" }, [name]),
        element("td", {}, [cookie.provider]),
        element("td", {}, [cookie.purpose[language]]),
        element("td", {}, [cookie.expiry[language]]),
      ]);
    });
    return element("table", {}, [
      element("caption", {}, [category.label[language]]),
      element("thead", {}, [element("tr", {}, columns)]),
      element("tbody", {}, rows),
    ]);
  }

  /**
   * The declaration itself: revision, first-served date, and each category with its cookies.
   * @param {HTMLElement} container
   * @param {Object<string, string>} texts
   * @param {string} language
   * @returns {Array<HTMLElement>}
   */
  function declarationNodes(container, texts, language) {
    const version = element("p", { "data-consent-version": "" }, [
      texts.revision + " " + DECLARATION.revision + " · " + texts.first_served + " ",
      timeElement(DECLARATION.first_served_at, language, true),
    ]);
    const sections = DECLARATION.categories.map(function (category) {
      const cookies = DECLARATION.cookies.filter(function (cookie) { return cookie.category === category.key; });
      const section = element("section", { "data-consent-category": category.key }, [
        heading(container, category.label[language]),
        element("p", {}, [category.description[language]]),
      ]);
      if (cookies.length) section.append(cookieTable(category, cookies, texts, language));
      return section;
    });
    return [version].concat(sections);
  }

  /**
   * The visitor's current choice, consent ID and date, or "no choice yet".
   * @param {Object|null} api window.consent, once the banner is there
   * @param {Object<string, string>} texts
   * @param {string} language
   * @returns {HTMLElement}
   */
  function choiceNode(api, texts, language) {
    const choice = api ? api.get() : null;
    if (!choice) return element("p", {}, [texts.no_choice]);
    const items = [];
    DECLARATION.categories.forEach(function (category) {
      const granted = category.key === "necessary" || choice[category.key] === true;
      items.push(element("dt", {}, [category.label[language]]));
      items.push(element("dd", { "data-consent-category": category.key }, [granted ? texts.granted : texts.denied]));
    });
    if (api.id) {
      items.push(element("dt", {}, [texts.consent_id]), element("dd", {}, [element("code", {}, [api.id])]));
    }
    if (api.date) {
      items.push(element("dt", {}, [texts.consent_date]), element("dd", {}, [timeElement(api.date, language, false)]));
    }
    return element("dl", {}, items);
  }

  /**
   * Save the visitor's history as a JSON file, fetched with their receipt in a header.
   * @param {string} consentId
   * @param {string} receipt
   */
  function downloadHistory(consentId, receipt) {
    const url = serviceUrl("/consents/" + encodeURIComponent(consentId));
    fetch(url, { headers: { "X-Consent-Receipt": receipt }, credentials: "omit", cache: "no-store" })
      .then(function (response) {
        if (!response.ok) throw new Error("the history request answered " + response.status);
        return response.blob();
      })
      .then(function (blob) {
        const href = URL.createObjectURL(new Blob([blob], { type: "application/json" }));
        const link = element("a", { href: href, download: "consent-" + consentId + ".json", hidden: "" });
        document.body.append(link);
        link.click();
        link.remove();
        setTimeout(function () { URL.revokeObjectURL(href); }, 10000);
      })
      .catch(function (error) {
        console.warn("consent: the history could not be downloaded:", error);
      });
  }

  /**
   * Render into the container and keep the visitor's part in step with the banner.
   * @param {HTMLElement} container
   */
  function mount(container) {
    const language = pickLanguage(container);
    const texts = DECLARATION.texts[language];
    const status = element("div", { "aria-live": "polite", "data-consent-status": "" });
    const change = element("button", { type: "button", "data-consent-action": "change" }, [texts.change]);
    const withdraw = element("button", { type: "button", "data-consent-action": "withdraw" }, [texts.withdraw]);
    const download = element("button", { type: "button", "data-consent-action": "download" }, [texts.download]);
    let refreshes = 0;
    let shown = null;
    let refresh = 0;

    /** Show the banner's current state; the live region changes only when the state does. */
    function update() {
      const api = window.consent || null;
      const choice = api ? api.get() : null;
      const state = JSON.stringify([choice, api && api.id, api && api.date]);
      if (state !== shown) status.replaceChildren(choiceNode(api, texts, language));
      shown = state;
      change.disabled = !api;
      // Withdrawing is offered while some optional category is granted.
      withdraw.disabled = !(choice && Object.keys(choice).some(function (key) {
        return key !== "necessary" && choice[key] === true;
      }));
      download.disabled = !(choice && api.id && api.receipt);
      // The consent ID and receipt arrive from the service shortly after a first choice.
      clearTimeout(refresh);
      if (choice && download.disabled && refreshes++ < BANNER_WAIT_MS / POLL_MS) refresh = setTimeout(update, POLL_MS);
    }

    change.addEventListener("click", function () { if (window.consent) window.consent.open(); });
    withdraw.addEventListener("click", function () { if (window.consent) window.consent.withdraw(); });
    download.addEventListener("click", function () {
      const api = window.consent;
      if (api && api.id && api.receipt) downloadHistory(api.id, api.receipt);
    });

    const own = element("section", { "data-consent-choice": "" }, [
      heading(container, texts.preferences),
      status,
      element("p", {}, [change, " ", withdraw, " ", download]),
    ]);
    container.setAttribute("lang", language);
    container.replaceChildren(own, ...declarationNodes(container, texts, language));
    document.addEventListener("consent:change", function () { refreshes = 0; update(); });
    update();
    waitForBanner(update);
  }

  /**
   * Call `ready` once window.consent appears, if the banner loads after this script.
   * @param {function(): void} ready
   */
  function waitForBanner(ready) {
    if (window.consent) return;
    const started = Date.now();
    const timer = setInterval(function () {
      if (window.consent || Date.now() - started > BANNER_WAIT_MS) {
        clearInterval(timer);
        ready();
      }
    }, POLL_MS);
  }

  /** Mount into the page's container, if it has one. */
  function start() {
    const container = document.getElementById(CONTAINER_ID);
    if (container) mount(container);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
