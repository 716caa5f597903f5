"""What the visitor keeps: the signed proof of their choice in the browser, to download; event ids always UUIDs."""

from __future__ import annotations

import json
import re
import urllib.parse
import urllib.request

from playwright.sync_api import expect

from consent.ledger.signing import RECORD, TREE_HEAD, PublicKey, check, parse_keys
from tests.support.browser import Shop

EVENT_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
PROOF_KEY = "consent.proof.demo"


def published_keys(shop: Shop) -> dict[str, PublicKey]:
    with urllib.request.urlopen(f"{shop.service.url}/api/v1/ledger/keys", timeout=10) as response:
        return parse_keys(json.loads(response.read()))


def test_the_visitor_keeps_a_signed_proof_without_the_token_and_can_download_it(shop: Shop) -> None:
    shop.visit()
    shop.click("accept")
    shop.page.wait_for_function(f"() => consent.receipt !== null && localStorage.getItem('{PROOF_KEY}') !== null")
    receipt, consent_id = shop.page.evaluate("consent.receipt"), shop.page.evaluate("consent.id")
    stored = shop.page.evaluate(f"localStorage.getItem('{PROOF_KEY}')")
    assert receipt not in stored  # shareable: it grants nothing
    proof = json.loads(stored)
    keys = published_keys(shop)
    assert check(proof["record"], keys, RECORD, at="recorded_at") is None
    assert proof["record"]["consent_id"] == consent_id and proof["record"]["action"] == "accept_all"
    assert proof["head"] is None or check(proof["head"], keys, TREE_HEAD) is None
    shop.page.evaluate("consent.open()")
    link = shop.preferences.get_by_role("link", name="Download your proof")
    expect(link).to_be_visible()
    assert link.get_attribute("download") == "consent-proof.json"
    href = link.get_attribute("href") or ""
    assert href.startswith("data:") and receipt not in href and urllib.parse.quote(receipt) not in href
    assert json.loads(urllib.parse.unquote(href.partition(",")[2])) == proof


def test_a_later_choice_replaces_the_kept_proof(shop: Shop) -> None:
    shop.visit()
    shop.click("accept")
    shop.page.wait_for_function(f"() => localStorage.getItem('{PROOF_KEY}') !== null")
    first = json.loads(shop.page.evaluate(f"localStorage.getItem('{PROOF_KEY}')"))
    shop.page.evaluate("consent.withdraw()")
    shop.page.wait_for_function(f"() => JSON.parse(localStorage.getItem('{PROOF_KEY}')).record.action === 'withdraw'")
    second = json.loads(shop.page.evaluate(f"localStorage.getItem('{PROOF_KEY}')"))
    assert second["record"]["consent_id"] == first["record"]["consent_id"]
    assert second["record"]["record_id"] > first["record"]["record_id"]


def test_event_ids_are_canonical_uuids_without_crypto_random_uuid(shop: Shop) -> None:
    # As outside a secure context, where crypto.randomUUID does not exist.
    shop.page.add_init_script("Object.defineProperty(Crypto.prototype, 'randomUUID', { value: undefined })")
    shop.visit()
    assert shop.page.evaluate("typeof crypto.randomUUID") == "undefined"
    shop.click("accept")
    shop.page.wait_for_function("() => consent.receipt !== null")
    for _ in range(5):
        shop.page.evaluate("consent.withdraw()")
    records = shop.wait_for_records(6)
    assert len(records) == 6  # every one accepted by the service's strict check
    assert all(EVENT_ID.match(record["event_id"]) for record in records)
    assert len({record["event_id"] for record in records}) == 6
