// The journal's state: the latest signed tree head, its Ed25519 signature checked here, in
// the browser, with WebCrypto, over the very bytes the service signs (docs/audit-format.md
// section 2.1): "yufu-tree-head-v1\n" then the canonical JSON of key_id, root_hash,
// timestamp and tree_size, in that order, no spaces. The key is the one the service
// publishes (section 2.2); its id is shown to be compared with the one the operator
// published, since a key served by the service proves nothing on its own.
// Sources: GET /v1/audit/tree-head, GET /v1/audit/public-key.
import { ApiError, fill } from "../common.js";

const LABEL = "yufu-tree-head-v1\n";
const HEX64 = /^[0-9a-f]{64}$/;

export function signedBytes(head) {
  // Every member is ASCII with nothing to escape (hex, the timestamp's 27 characters and an
  // integer), so this is the RFC 8785 form; anything else is refused rather than guessed.
  if (!HEX64.test(head.key_id) || !HEX64.test(head.root_hash)
      || !/^[0-9T:.\-Z]{27}$/.test(head.timestamp) || !Number.isSafeInteger(head.tree_size)) {
    throw new Error("the tree head is not in the documented form");
  }
  const json = `{"key_id":"${head.key_id}","root_hash":"${head.root_hash}",`
    + `"timestamp":"${head.timestamp}","tree_size":${head.tree_size}}`;
  return new TextEncoder().encode(LABEL + json);
}

function fromHex(hex) {
  if (!/^([0-9a-f]{2})*$/.test(hex)) throw new Error("not hex");
  return Uint8Array.from(hex.match(/../g) || [], (pair) => parseInt(pair, 16));
}

function toHex(bytes) {
  return [...new Uint8Array(bytes)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

function derOf(pem) {
  const body = pem.replace(/-----(BEGIN|END) PUBLIC KEY-----/g, "").replace(/\s+/g, "");
  return Uint8Array.from(atob(body), (c) => c.charCodeAt(0));
}

// true when the signature is the key's over the head's bytes; a reason (text) when not.
export async function check(head, publicKey, t) {
  const der = derOf(publicKey.public_key_pem);
  // The key id is SHA-256 of the raw 32-byte key: the last 32 bytes of the DER.
  const keyId = toHex(await crypto.subtle.digest("SHA-256", der.slice(der.length - 32)));
  if (keyId !== publicKey.key_id || keyId !== head.key_id) return t("journal.key_mismatch");
  const signature = fromHex(head.signature);
  if (signature.length !== 64) return t("journal.not_verified");
  let key;
  try {
    key = await crypto.subtle.importKey("spki", der, { name: "Ed25519" }, false, ["verify"]);
  } catch {
    return t("journal.no_ed25519");
  }
  const valid = await crypto.subtle.verify({ name: "Ed25519" }, key, signature, signedBytes(head));
  return valid ? true : t("journal.not_verified");
}

export async function load(section, { api, t }) {
  const state = section.querySelector(".signature-state");
  let head;
  try {
    head = await api.get("/v1/audit/tree-head");
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 404)) throw error;
    state.dataset.state = "none";
    state.textContent = t("journal.no_head");
    return;
  }
  for (const field of ["tree_size", "timestamp", "root_hash", "key_id", "signature"]) {
    fill(section, field, head[field], head[field]);
  }
  const publicKey = await api.get("/v1/audit/public-key");
  let verdict;
  try {
    verdict = await check(head, publicKey, t);
  } catch (error) {
    verdict = `${t("journal.not_verified")}: ${error.message}`;
  }
  state.dataset.state = verdict === true ? "verified" : "not-verified";
  state.textContent = verdict === true ? `✔ ${t("journal.verified")}`
    : `✘ ${t("journal.not_verified")}${verdict === t("journal.not_verified") ? "" : ` (${verdict})`}`;
}
