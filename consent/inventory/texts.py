"""Built-in texts: category labels and the banner's strings in en, nl, de and fr.

A site overrides any of them per language in ``cookies.yaml`` (``texts:`` and
``categories:``); the keys here are the only ones an inventory may override.
"""

from __future__ import annotations

CATEGORIES = ("necessary", "functional", "analytics", "advertising")

CATEGORY_TEXTS: dict[str, dict[str, dict[str, str]]] = {
    "necessary": {
        "label": {
            "en": "Strictly necessary",
            "nl": "Strikt noodzakelijk",
            "de": "Unbedingt erforderlich",
            "fr": "Strictement nécessaires",
        },
        "description": {
            "en": "Needed for the site to work. Always on.",
            "nl": "Nodig om de site te laten werken. Altijd aan.",
            "de": "Für den Betrieb der Website nötig. Immer aktiv.",
            "fr": "Indispensables au fonctionnement du site. Toujours actifs.",
        },
    },
    "functional": {
        "label": {
            "en": "Functional",
            "nl": "Functioneel",
            "de": "Funktional",
            "fr": "Fonctionnels",
        },
        "description": {
            "en": "Remember your choices, such as language, and enable embedded content.",
            "nl": "Onthouden uw keuzes, zoals taal, en maken ingesloten inhoud mogelijk.",
            "de": "Speichern Ihre Einstellungen, etwa die Sprache, und ermöglichen Einbettungen.",
            "fr": "Mémorisent vos choix, comme la langue, et permettent les contenus intégrés.",
        },
    },
    "analytics": {
        "label": {"en": "Analytics", "nl": "Analyse", "de": "Statistik", "fr": "Mesure d'audience"},
        "description": {
            "en": "Help us understand how visitors use the site.",
            "nl": "Helpen ons begrijpen hoe bezoekers de site gebruiken.",
            "de": "Helfen uns zu verstehen, wie Besucher die Website nutzen.",
            "fr": "Nous aident à comprendre comment les visiteurs utilisent le site.",
        },
    },
    "advertising": {
        "label": {"en": "Advertising", "nl": "Advertenties", "de": "Werbung", "fr": "Publicité"},
        "description": {
            "en": "Used to show you relevant ads and measure them, here and on other sites.",
            "nl": "Gebruikt om relevante advertenties te tonen en te meten, hier en elders.",
            "de": "Für passende Werbung und deren Messung, hier und auf anderen Websites.",
            "fr": "Servent à afficher et mesurer des publicités pertinentes, ici et ailleurs.",
        },
    },
}

BANNER_TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "title": "Cookies on this site",
        "intro": "We use cookies to run this site and, with your consent, "
        "to remember preferences, measure visits and show ads.",
        "policy": "Cookie policy",
        "accept_all": "Accept all",
        "reject_all": "Reject all",
        "customise": "Customise",
        "save": "Save choices",
        "close": "Close",
        "preferences": "Cookie preferences",
        "always_on": "Always on",
        "gpc_notice": "Your browser asks not to be tracked (Global Privacy Control or "
        "Do Not Track), so advertising stays off unless you switch it on here.",
        "consent_id": "Consent ID",
        "consent_date": "Date",
        "name": "Name",
        "provider": "Provider",
        "purpose": "Purpose",
        "expiry": "Expiry",
        "cookies_used": "Cookies used",
        "blocked": "This content from {provider} needs consent for {category}.",
        "load_once": "Load once",
        "always_allow": "Always allow",
        "change": "Change your consent",
        "withdraw": "Withdraw consent",
        "download": "Download my consent history",
        "download_proof": "Download your proof",
        "granted": "Allowed",
        "denied": "Not allowed",
        "no_choice": "No choice made yet.",
        "revision": "Revision",
        "first_served": "In use since",
    },
    "nl": {
        "title": "Cookies op deze site",
        "intro": "We gebruiken cookies om deze site te laten werken en, met uw toestemming, "
        "om voorkeuren te onthouden, bezoeken te meten en advertenties te tonen.",
        "policy": "Cookiebeleid",
        "accept_all": "Alles accepteren",
        "reject_all": "Alles weigeren",
        "customise": "Aanpassen",
        "save": "Keuzes opslaan",
        "close": "Sluiten",
        "preferences": "Cookievoorkeuren",
        "always_on": "Altijd aan",
        "gpc_notice": "Uw browser vraagt om niet gevolgd te worden (Global Privacy Control of "
        "Do Not Track), dus advertenties blijven uit tenzij u ze hier aanzet.",
        "consent_id": "Toestemmings-ID",
        "consent_date": "Datum",
        "name": "Naam",
        "provider": "Aanbieder",
        "purpose": "Doel",
        "expiry": "Looptijd",
        "cookies_used": "Gebruikte cookies",
        "blocked": "Deze inhoud van {provider} vraagt toestemming voor {category}.",
        "load_once": "Eenmalig laden",
        "always_allow": "Altijd toestaan",
        "change": "Toestemming wijzigen",
        "withdraw": "Toestemming intrekken",
        "download": "Mijn toestemmingsgeschiedenis downloaden",
        "download_proof": "Uw bewijs downloaden",
        "granted": "Toegestaan",
        "denied": "Niet toegestaan",
        "no_choice": "Nog geen keuze gemaakt.",
        "revision": "Versie",
        "first_served": "In gebruik sinds",
    },
    "de": {
        "title": "Cookies auf dieser Website",
        "intro": "Wir verwenden Cookies für den Betrieb der Website und, mit Ihrer Einwilligung, "
        "um Einstellungen zu speichern, Besuche zu messen und Werbung zu zeigen.",
        "policy": "Cookie-Richtlinie",
        "accept_all": "Alle akzeptieren",
        "reject_all": "Alle ablehnen",
        "customise": "Anpassen",
        "save": "Auswahl speichern",
        "close": "Schließen",
        "preferences": "Cookie-Einstellungen",
        "always_on": "Immer aktiv",
        "gpc_notice": "Ihr Browser bittet darum, nicht verfolgt zu werden (Global Privacy Control "
        "oder Do Not Track), daher bleibt Werbung aus, außer Sie schalten sie hier ein.",
        "consent_id": "Einwilligungs-ID",
        "consent_date": "Datum",
        "name": "Name",
        "provider": "Anbieter",
        "purpose": "Zweck",
        "expiry": "Laufzeit",
        "cookies_used": "Verwendete Cookies",
        "blocked": "Dieser Inhalt von {provider} benötigt eine Einwilligung für {category}.",
        "load_once": "Einmal laden",
        "always_allow": "Immer erlauben",
        "change": "Einwilligung ändern",
        "withdraw": "Einwilligung widerrufen",
        "download": "Meinen Einwilligungsverlauf herunterladen",
        "download_proof": "Ihren Nachweis herunterladen",
        "granted": "Erlaubt",
        "denied": "Nicht erlaubt",
        "no_choice": "Noch keine Auswahl getroffen.",
        "revision": "Version",
        "first_served": "Gültig seit",
    },
    "fr": {
        "title": "Cookies sur ce site",
        "intro": "Nous utilisons des cookies pour faire fonctionner ce site et, avec votre "
        "accord, pour mémoriser vos préférences, mesurer l'audience et afficher des publicités.",
        "policy": "Politique cookies",
        "accept_all": "Tout accepter",
        "reject_all": "Tout refuser",
        "customise": "Personnaliser",
        "save": "Enregistrer mes choix",
        "close": "Fermer",
        "preferences": "Préférences cookies",
        "always_on": "Toujours actifs",
        "gpc_notice": "Votre navigateur demande à ne pas être suivi (Global Privacy Control ou "
        "Do Not Track) : la publicité reste désactivée sauf si vous l'activez ici.",
        "consent_id": "Identifiant de consentement",
        "consent_date": "Date",
        "name": "Nom",
        "provider": "Fournisseur",
        "purpose": "Finalité",
        "expiry": "Durée",
        "cookies_used": "Cookies utilisés",
        "blocked": "Ce contenu de {provider} nécessite votre accord pour : {category}.",
        "load_once": "Charger une fois",
        "always_allow": "Toujours autoriser",
        "change": "Modifier mon consentement",
        "withdraw": "Retirer mon consentement",
        "download": "Télécharger l'historique de mes consentements",
        "download_proof": "Télécharger votre preuve",
        "granted": "Autorisé",
        "denied": "Non autorisé",
        "no_choice": "Aucun choix pour l'instant.",
        "revision": "Version",
        "first_served": "En vigueur depuis",
    },
}

# The first layer's strings in the opt-out and notice regimes (consent.inventory.regimes). Kept apart
# from BANNER_TEXTS so that the public inventory of a site without regions stays what it was.
REGIME_TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "notice": "We use cookies to run this site, remember preferences, measure visits and show ads. "
        "You can change this at any time.",
        "opt_out": "Do Not Sell or Share My Personal Information",
        "ok": "OK",
    },
    "nl": {
        "notice": "We gebruiken cookies om deze site te laten werken, voorkeuren te onthouden, bezoeken te "
        "meten en advertenties te tonen. U kunt dit op elk moment wijzigen.",
        "opt_out": "Mijn persoonsgegevens niet verkopen of delen",
        "ok": "OK",
    },
    "de": {
        "notice": "Wir verwenden Cookies, um diese Website zu betreiben, Einstellungen zu speichern, Besuche "
        "zu messen und Werbung zu zeigen. Sie können das jederzeit ändern.",
        "opt_out": "Meine personenbezogenen Daten nicht verkaufen oder weitergeben",
        "ok": "OK",
    },
    "fr": {
        "notice": "Nous utilisons des cookies pour faire fonctionner ce site, mémoriser vos préférences, "
        "mesurer les visites et afficher des publicités. Vous pouvez changer cela à tout moment.",
        "opt_out": "Ne pas vendre ni partager mes informations personnelles",
        "ok": "OK",
    },
}

CONSENT_COOKIE_PURPOSE = {
    "en": "Stores your cookie choices, your consent ID and its receipt.",
    "nl": "Bewaart uw cookiekeuzes, uw toestemmings-ID en het bewijs daarvan.",
    "de": "Speichert Ihre Cookie-Auswahl, Ihre Einwilligungs-ID und deren Beleg.",
    "fr": "Conserve vos choix de cookies, votre identifiant de consentement et son reçu.",
}
