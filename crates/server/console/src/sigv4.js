// AWS Signature Version 4 in the browser, with WebCrypto (HMAC-SHA256 and
// SHA-256). The console signs every call itself, with the credentials its
// user typed, exactly as the aws CLI would: the server authenticates,
// authorizes and audits it like any other call.

const enc = new TextEncoder();

function hex(buf) {
  const b = new Uint8Array(buf);
  let s = "";
  for (let i = 0; i < b.length; i++) s += b[i].toString(16).padStart(2, "0");
  return s;
}

/** Hex SHA-256 of a string or bytes. */
export async function sha256Hex(data) {
  const bytes = typeof data === "string" ? enc.encode(data) : data;
  return hex(await crypto.subtle.digest("SHA-256", bytes));
}

async function hmac(key, data) {
  const k = await crypto.subtle.importKey(
    "raw",
    typeof key === "string" ? enc.encode(key) : key,
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  return crypto.subtle.sign("HMAC", k, enc.encode(data));
}

/** `20250102T030405Z` for a Date. */
export function amzDate(d) {
  return d.toISOString().replace(/[-:]/g, "").replace(/\.\d{3}/, "");
}

/** RFC 3986 encoding, as SigV4 wants it for each path segment. */
function uriEncode(s) {
  return encodeURIComponent(s).replace(
    /[!'()*]/g,
    (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase(),
  );
}

/**
 * Signs a request. `req` is {method, host, path, headers, body}; the
 * headers (lower-case names) are all signed; `host` and `x-amz-date` (and
 * `x-amz-security-token` with a session) are added. Returns the headers to
 * send (without `host`, which the browser sets itself to the same value).
 */
export async function sign(req, creds, region, service, now = new Date()) {
  const date = amzDate(now);
  const day = date.slice(0, 8);
  const headers = { ...req.headers, host: req.host, "x-amz-date": date };
  if (creds.sessionToken) headers["x-amz-security-token"] = creds.sessionToken;
  const names = Object.keys(headers).sort();
  const canonicalHeaders = names
    .map((n) => `${n}:${String(headers[n]).trim().replace(/\s+/g, " ")}\n`)
    .join("");
  const signedHeaders = names.join(";");
  const path = req.path.split("/").map(uriEncode).join("/") || "/";
  const canonical = [
    req.method,
    path,
    "",
    canonicalHeaders,
    signedHeaders,
    await sha256Hex(req.body),
  ].join("\n");
  const scope = `${day}/${region}/${service}/aws4_request`;
  const toSign = ["AWS4-HMAC-SHA256", date, scope, await sha256Hex(canonical)].join("\n");
  let key = await hmac("AWS4" + creds.secretAccessKey, day);
  key = await hmac(key, region);
  key = await hmac(key, service);
  key = await hmac(key, "aws4_request");
  const signature = hex(await hmac(key, toSign));
  const out = { ...headers };
  delete out.host;
  out.authorization =
    `AWS4-HMAC-SHA256 Credential=${creds.accessKeyId}/${scope}, ` +
    `SignedHeaders=${signedHeaders}, Signature=${signature}`;
  return out;
}
