// The AWS-shaped APIs the console calls, each request signed by sigv4.js:
// KMS and CloudTrail (JSON 1.1, `X-Amz-Target: TrentService.Op`,
// `FerrokmsService.Op`, `...CloudTrail_20131101.LookupEvents`), IAM and STS (query
// protocol, XML answers) and Access Analyzer (REST JSON). No call has any
// privilege of its own: the server treats it as it treats the aws CLI.

import { sign } from "./sigv4.js";

/** An AWS error: `code` and `message` as the server sent them. */
export class AwsError extends Error {
  constructor(code, message, status) {
    super(message ? `${code}: ${message}` : code);
    this.code = code;
    this.awsMessage = message || "";
    this.status = status;
  }
}

const TIMEOUT_MS = 30000;

/** The signed-in session: credentials and region, in memory. */
export class Session {
  constructor(creds, region) {
    this.creds = creds;
    this.region = region;
  }

  async send(service, path, headers, body) {
    const signed = await sign(
      { method: "POST", host: location.host, path, headers, body },
      this.creds,
      this.region,
      service,
    );
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), TIMEOUT_MS);
    try {
      return await fetch(path, {
        method: "POST",
        headers: signed,
        body,
        credentials: "omit",
        cache: "no-store",
        signal: ctl.signal,
      });
    } catch (e) {
      throw new AwsError("NetworkError", e.name === "AbortError" ? "no answer in time" : String(e.message || e), 0);
    } finally {
      clearTimeout(timer);
    }
  }

  /** A KMS operation: `kms("ListKeys", {Limit: 100})`. */
  async kms(op, params = {}) {
    return this.json("kms", `TrentService.${op}`, params);
  }

  /**
   * One of ferrokms's analysis operations on the KMS endpoint (signing
   * name `kms`, `X-Amz-Target: FerrokmsService.Op`): SimulateKeyRequest,
   * ListKeyAccess (docs/analysis.md).
   */
  async ferrokms(op, params = {}) {
    return this.json("kms", `FerrokmsService.${op}`, params);
  }

  /**
   * A CloudTrail operation (the server's audit trail):
   * `cloudtrail("LookupEvents", {LookupAttributes: [...]})`.
   */
  async cloudtrail(op, params = {}) {
    return this.json("cloudtrail", `com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.${op}`, params);
  }

  /** An AWS JSON 1.1 operation of `service`, named by its `X-Amz-Target`. */
  async json(service, target, params) {
    const resp = await this.send(
      service,
      "/",
      { "content-type": "application/x-amz-json-1.1", "x-amz-target": target },
      JSON.stringify(params),
    );
    const text = await resp.text();
    let doc = {};
    try {
      doc = text ? JSON.parse(text) : {};
    } catch {
      doc = {};
    }
    if (!resp.ok) {
      const type = resp.headers.get("x-amzn-errortype") || doc.__type || `HTTP ${resp.status}`;
      throw new AwsError(type.split("#").pop().split(":")[0], doc.message || doc.Message, resp.status);
    }
    return doc;
  }

  /** An IAM or STS query operation; returns the XML document. */
  async query(service, action, params = {}) {
    const version = service === "sts" ? "2011-06-15" : "2010-05-08";
    const form = new URLSearchParams({ Action: action, Version: version, ...params });
    const resp = await this.send(
      service,
      "/",
      { "content-type": "application/x-www-form-urlencoded; charset=utf-8" },
      form.toString(),
    );
    const text = await resp.text();
    const doc = new DOMParser().parseFromString(text, "application/xml");
    if (!resp.ok) {
      const code = doc.querySelector("Error > Code")?.textContent || `HTTP ${resp.status}`;
      const message = doc.querySelector("Error > Message")?.textContent || "";
      throw new AwsError(code, message, resp.status);
    }
    return doc;
  }

  /** STS GetCallerIdentity: {Account, Arn, UserId}. */
  async whoami() {
    const doc = await this.query("sts", "GetCallerIdentity");
    const get = (n) => doc.querySelector(`GetCallerIdentityResult > ${n}`)?.textContent || "";
    return { Account: get("Account"), Arn: get("Arn"), UserId: get("UserId") };
  }

  /**
   * Access Analyzer ValidatePolicy for a key policy. Returns the findings,
   * or null when the server has no Access Analyzer API (it answers an
   * unknown operation).
   */
  async validateKeyPolicy(policyDocument) {
    // Asked once per sign-in: a server without the API is not asked again.
    if (this.noAnalyzer) return null;
    if (this.analyzerDenied) throw this.analyzerDenied;
    const resp = await this.send(
      "access-analyzer",
      "/policy/validation",
      { "content-type": "application/json" },
      JSON.stringify({
        policyDocument,
        policyType: "RESOURCE_POLICY",
        validatePolicyResourceType: "AWS::KMS::Key",
      }),
    );
    const text = await resp.text();
    let doc = {};
    try {
      doc = text ? JSON.parse(text) : {};
    } catch {
      doc = {};
    }
    const type = (resp.headers.get("x-amzn-errortype") || doc.__type || "").split("#").pop().split(":")[0];
    if (resp.status === 404 || type === "UnknownOperationException") {
      this.noAnalyzer = true;
      return null;
    }
    if (!resp.ok) {
      const err = new AwsError(type || `HTTP ${resp.status}`, doc.message || doc.Message, resp.status);
      // Not allowed to these credentials: not asked again either.
      if (err.code === "AccessDeniedException") this.analyzerDenied = err;
      throw err;
    }
    return Array.isArray(doc.findings) ? doc.findings : [];
  }
}

/** Every page of a KMS list operation, at most `maxPages` pages. */
export async function allPages(session, op, params, field, maxPages = 100) {
  const out = [];
  let marker;
  for (let i = 0; i < maxPages; i++) {
    const page = await session.kms(op, marker ? { ...params, Marker: marker } : params);
    out.push(...(page[field] || []));
    if (!page.Truncated || !page.NextMarker) break;
    marker = page.NextMarker;
  }
  return out;
}
