/**
 * A test double of the AWS APIs Hecate uses, on loopback, plain HTTP: Secrets Manager
 * GetSecretValue (JSON 1.1), STS AssumeRole and AssumeRoleWithWebIdentity (query protocol, XML),
 * EC2 instance metadata IMDSv2, and a container credentials endpoint. It is not AWS.
 *
 * It authenticates requests the way AWS does: every signed request's SigV4 signature is
 * recomputed with an independent implementation (AWS's own `@smithy/signature-v4` with
 * `@aws-crypto/sha256-js`, never Hecate's code nor aws4fetch) from the secret key of the access
 * key id in the request. A wrong secret key, a credential scope for another region or service, a
 * date more than 5 minutes off, a tampered body or header, an unknown key or a missing or wrong
 * session token are refused with the error shapes AWS uses (`InvalidSignatureException`,
 * `UnrecognizedClientException`, `SignatureDoesNotMatch`, `InvalidClientTokenId`).
 *
 * @module
 */

import { SignatureV4 } from "@smithy/signature-v4";
import { Sha256 } from "@aws-crypto/sha256-js";

/** A key pair the double knows. */
export interface DoubleKey {
  readonly secretAccessKey: string;
  /** Temporary keys must come with their session token. */
  readonly sessionToken?: string;
  /** The principal's ARN (what AssumeRole's trust policy names). */
  readonly principal: string;
}

/** One stored secret. */
export interface DoubleSecret {
  readonly secretString?: string;
  readonly secretBinary?: string;
  readonly versionId: string;
  /** Principals allowed to read it (all when absent). */
  readonly readers?: readonly string[];
}

/** How to start the double. */
export interface AwsDoubleOptions {
  readonly region: string;
  /** Long-term keys by access key id. */
  readonly keys?: Record<string, DoubleKey>;
  /** Secrets by name. */
  readonly secrets?: Record<string, DoubleSecret>;
  /** Roles by ARN: the principals (ARNs) their trust policy lets AssumeRole. */
  readonly roles?: Record<string, readonly string[]>;
  /** Web identity tokens accepted by AssumeRoleWithWebIdentity, with the role each may assume. */
  readonly webIdentityTokens?: Record<string, string>;
  /** The instance role IMDS serves (none when absent). */
  readonly instanceRole?: string;
  /** The Authorization value the container endpoint requires (none needed when absent). */
  readonly containerAuthToken?: string;
  /** Lifetime of issued temporary credentials, seconds. @default {3600} */
  readonly tempSeconds?: number;
}

/** A request the double saw (for assertions; no secrets but the ones the test made). */
export interface SeenRequest {
  readonly api: string;
  readonly outcome: string;
  readonly principal?: string;
}

/** A running double. */
export interface AwsDouble {
  /** `http://127.0.0.1:PORT` (use it as AWS_ENDPOINT_URL, the IMDS endpoint, ...). */
  readonly url: string;
  readonly region: string;
  /** Every request with its outcome. */
  readonly seen: SeenRequest[];
  /** Adds or replaces a secret. */
  putSecret(name: string, secret: DoubleSecret): void;
  /** The ARN of a secret, as the double names it. */
  arnOf(name: string): string;
  close(): Promise<void>;
}

const ACCOUNT = "123456789012";
const SKEW_MS = 5 * 60_000;

function randomId(prefix: string, n: number): string {
  const abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  const bytes = crypto.getRandomValues(new Uint8Array(n));
  return prefix + [...bytes].map((b) => abc[b % 32]).join("");
}

function xmlEscape(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/** The parts of an `Authorization: AWS4-HMAC-SHA256 ...` header. */
interface AuthParts {
  accessKeyId: string;
  date: string;
  region: string;
  service: string;
  signedHeaders: string[];
  signature: string;
}

function parseAuthorization(header: string | null): AuthParts | undefined {
  const m =
    /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$/
      .exec(header ?? "");
  if (!m) return undefined;
  return {
    accessKeyId: m[1]!,
    date: m[2]!,
    region: m[3]!,
    service: m[4]!,
    signedHeaders: m[5]!.split(";"),
    signature: m[6]!,
  };
}

function parseAmzDate(text: string | null): Date | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(text ?? "");
  if (!m) return undefined;
  return new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!));
}

/** Why a signed request was refused; undefined when it is good. */
type Refusal = {
  kind: "unknown-key" | "bad-token" | "bad-signature" | "expired" | "scope";
  message: string;
};

/**
 * Recomputes a header-signed request's signature with @smithy/signature-v4.
 *
 * @returns The principal, or why the request is refused.
 */
async function verifySigV4(
  req: Request,
  body: string,
  keys: Map<string, DoubleKey>,
  region: string,
  service: string,
): Promise<{ principal: string } | Refusal> {
  const auth = parseAuthorization(req.headers.get("authorization"));
  if (!auth) return { kind: "bad-signature", message: "Missing or malformed Authorization header" };
  const key = keys.get(auth.accessKeyId);
  if (!key) {
    return {
      kind: "unknown-key",
      message: "The security token included in the request is invalid.",
    };
  }
  const token = req.headers.get("x-amz-security-token") ?? undefined;
  if (key.sessionToken !== token) {
    return { kind: "bad-token", message: "The security token included in the request is invalid." };
  }
  if (auth.region !== region) {
    return {
      kind: "scope",
      message: `Credential should be scoped to a valid region, not '${auth.region}'.`,
    };
  }
  if (auth.service !== service) {
    return {
      kind: "scope",
      message: `Credential should be scoped to correct service: '${service}'.`,
    };
  }
  const when = parseAmzDate(req.headers.get("x-amz-date"));
  if (!when || auth.date !== req.headers.get("x-amz-date")!.slice(0, 8)) {
    return {
      kind: "bad-signature",
      message:
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP",
    };
  }
  if (Math.abs(Date.now() - when.getTime()) > SKEW_MS) {
    return {
      kind: "expired",
      message: `Signature expired: ${
        req.headers.get("x-amz-date")
      } is now earlier than the allowed skew.`,
    };
  }
  const url = new URL(req.url);
  const headers: Record<string, string> = {};
  for (const h of auth.signedHeaders) {
    const v = req.headers.get(h);
    if (v === null) return { kind: "bad-signature", message: `Signed header ${h} is missing` };
    headers[h] = v;
  }
  const query: Record<string, string> = {};
  for (const [k, v] of url.searchParams) query[k] = v;
  const signer = new SignatureV4({
    credentials: {
      accessKeyId: auth.accessKeyId,
      secretAccessKey: key.secretAccessKey,
      ...(token ? { sessionToken: token } : {}),
    },
    region,
    service,
    sha256: Sha256,
    applyChecksum: false,
  });
  const signed = await signer.sign({
    method: req.method,
    protocol: url.protocol,
    hostname: url.hostname,
    ...(url.port ? { port: Number(url.port) } : {}),
    path: url.pathname,
    query,
    headers,
    body,
  }, { signingDate: when, signingRegion: region, signingService: service });
  const expected = /Signature=([0-9a-f]{64})/.exec(String(signed.headers.authorization))?.[1];
  if (expected !== auth.signature) {
    return {
      kind: "bad-signature",
      message: "The request signature we calculated does not match the signature you provided.",
    };
  }
  return { principal: key.principal };
}

/**
 * Starts the double on 127.0.0.1 with a free port.
 *
 * @param o Keys, secrets, roles, tokens, the instance role and the container token.
 * @returns The running double.
 */
export function startAwsDouble(o: AwsDoubleOptions): Promise<AwsDouble> {
  const keys = new Map<string, DoubleKey>(Object.entries(o.keys ?? {}));
  const secrets = new Map<string, DoubleSecret>(Object.entries(o.secrets ?? {}));
  const imdsTokens = new Set<string>();
  const seen: SeenRequest[] = [];
  const tempSeconds = o.tempSeconds ?? 3600;
  const arnOf = (name: string) =>
    `arn:aws:secretsmanager:${o.region}:${ACCOUNT}:secret:${name}-AbCdEf`;

  function issue(principal: string) {
    const accessKeyId = randomId("ASIA", 16);
    const secretAccessKey = randomId("", 40);
    const sessionToken = randomId("FwoG", 64);
    keys.set(accessKeyId, { secretAccessKey, sessionToken, principal });
    const expiration = new Date(Date.now() + tempSeconds * 1000).toISOString();
    return { accessKeyId, secretAccessKey, sessionToken, expiration };
  }

  const json = (status: number, v: unknown) =>
    new Response(JSON.stringify(v), {
      status,
      headers: { "content-type": "application/x-amz-json-1.1" },
    });
  const smError = (status: number, type: string, message: string) =>
    json(status, { __type: type, message });
  const stsError = (status: number, code: string, message: string) =>
    new Response(
      `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>${code}</Code><Message>${
        xmlEscape(message)
      }</Message></Error><RequestId>${crypto.randomUUID()}</RequestId></ErrorResponse>`,
      { status, headers: { "content-type": "text/xml" } },
    );
  const stsCreds = (action: string, c: ReturnType<typeof issue>, roleArn: string) =>
    new Response(
      `<${action}Response xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><${action}Result><Credentials><AccessKeyId>${c.accessKeyId}</AccessKeyId><SecretAccessKey>${c.secretAccessKey}</SecretAccessKey><SessionToken>${c.sessionToken}</SessionToken><Expiration>${c.expiration}</Expiration></Credentials><AssumedRoleUser><Arn>${
        xmlEscape(roleArn)
      }/hecate</Arn></AssumedRoleUser></${action}Result></${action}Response>`,
      { headers: { "content-type": "text/xml" } },
    );

  async function secretsManager(req: Request, body: string): Promise<Response> {
    const target = req.headers.get("x-amz-target");
    if (target !== "secretsmanager.GetSecretValue") {
      seen.push({ api: "secretsmanager", outcome: "UnknownOperationException" });
      return smError(400, "UnknownOperationException", "Unknown operation");
    }
    if (req.headers.get("content-type") !== "application/x-amz-json-1.1") {
      return smError(400, "SerializationException", "Wrong content type");
    }
    const v = await verifySigV4(req, body, keys, o.region, "secretsmanager");
    if ("kind" in v) {
      const type = v.kind === "unknown-key" || v.kind === "bad-token"
        ? "UnrecognizedClientException"
        : "InvalidSignatureException";
      seen.push({ api: "GetSecretValue", outcome: type });
      return smError(400, type, v.message);
    }
    let input: { SecretId?: unknown; VersionId?: unknown; VersionStage?: unknown };
    try {
      input = JSON.parse(body);
    } catch {
      return smError(400, "SerializationException", "Body is not JSON");
    }
    const id = String(input.SecretId ?? "");
    const name = [...secrets.keys()].find((n) => n === id || arnOf(n) === id);
    const secret = name === undefined ? undefined : secrets.get(name);
    const versionOk = !secret ||
      ((input.VersionId === undefined || input.VersionId === secret.versionId) &&
        (input.VersionStage === undefined || input.VersionStage === "AWSCURRENT"));
    if (!secret || !versionOk) {
      seen.push({
        api: "GetSecretValue",
        outcome: "ResourceNotFoundException",
        principal: v.principal,
      });
      return smError(
        400,
        "ResourceNotFoundException",
        "Secrets Manager can't find the specified secret.",
      );
    }
    if (secret.readers && !secret.readers.includes(v.principal)) {
      seen.push({
        api: "GetSecretValue",
        outcome: "AccessDeniedException",
        principal: v.principal,
      });
      return smError(
        400,
        "AccessDeniedException",
        `User: ${v.principal} is not authorized to perform: secretsmanager:GetSecretValue`,
      );
    }
    seen.push({ api: "GetSecretValue", outcome: "ok", principal: v.principal });
    return json(200, {
      ARN: arnOf(name!),
      Name: name,
      VersionId: secret.versionId,
      ...(secret.secretString !== undefined ? { SecretString: secret.secretString } : {}),
      ...(secret.secretBinary !== undefined ? { SecretBinary: secret.secretBinary } : {}),
      VersionStages: ["AWSCURRENT"],
      CreatedDate: Date.now() / 1000,
    });
  }

  async function sts(req: Request, body: string): Promise<Response> {
    const form = new URLSearchParams(body);
    const action = form.get("Action");
    const roleArn = form.get("RoleArn") ?? "";
    if (form.get("Version") !== "2011-06-15" || !form.get("RoleSessionName")) {
      return stsError(400, "MissingParameter", "Version and RoleSessionName are required");
    }
    if (action === "AssumeRoleWithWebIdentity") {
      const token = form.get("WebIdentityToken") ?? "";
      const allowed = o.webIdentityTokens?.[token];
      if (allowed === undefined) {
        seen.push({ api: action, outcome: "InvalidIdentityToken" });
        return stsError(400, "InvalidIdentityToken", "The web identity token is not valid");
      }
      if (allowed !== roleArn) {
        seen.push({ api: action, outcome: "AccessDenied" });
        return stsError(
          403,
          "AccessDenied",
          "Not authorized to perform sts:AssumeRoleWithWebIdentity",
        );
      }
      seen.push({ api: action, outcome: "ok", principal: roleArn });
      return stsCreds(action, issue(roleArn), roleArn);
    }
    if (action !== "AssumeRole") return stsError(400, "InvalidAction", "Unknown action");
    const v = await verifySigV4(req, body, keys, o.region, "sts");
    if ("kind" in v) {
      const code = v.kind === "unknown-key" || v.kind === "bad-token"
        ? "InvalidClientTokenId"
        : "SignatureDoesNotMatch";
      seen.push({ api: action, outcome: code });
      return stsError(403, code, v.message);
    }
    const trusted = o.roles?.[roleArn];
    if (!trusted || !trusted.includes(v.principal)) {
      seen.push({ api: action, outcome: "AccessDenied", principal: v.principal });
      return stsError(
        403,
        "AccessDenied",
        `User: ${v.principal} is not authorized to perform: sts:AssumeRole on resource: ${roleArn}`,
      );
    }
    seen.push({ api: action, outcome: "ok", principal: v.principal });
    return stsCreds(action, issue(roleArn), roleArn);
  }

  function imds(req: Request, path: string): Response {
    if (path === "/latest/api/token") {
      const ttl = Number(req.headers.get("x-aws-ec2-metadata-token-ttl-seconds"));
      if (req.method !== "PUT" || !(ttl >= 1 && ttl <= 21600)) {
        seen.push({ api: "imds-token", outcome: "400" });
        return new Response("", { status: 400 });
      }
      const token = randomId("AQAE", 40);
      imdsTokens.add(token);
      seen.push({ api: "imds-token", outcome: "ok" });
      return new Response(token);
    }
    // IMDSv2 only: no session token, no answer (as with HttpTokens=required).
    if (!imdsTokens.has(req.headers.get("x-aws-ec2-metadata-token") ?? "")) {
      seen.push({ api: "imds", outcome: "401" });
      return new Response("", { status: 401 });
    }
    const base = "/latest/meta-data/iam/security-credentials/";
    if (!o.instanceRole) return new Response("", { status: 404 });
    if (path === base) {
      seen.push({ api: "imds-role", outcome: "ok" });
      return new Response(o.instanceRole);
    }
    if (path === base + o.instanceRole) {
      const c = issue(`arn:aws:iam::${ACCOUNT}:role/${o.instanceRole}`);
      seen.push({ api: "imds-credentials", outcome: "ok" });
      return Response.json({
        Code: "Success",
        LastUpdated: new Date().toISOString(),
        Type: "AWS-HMAC",
        AccessKeyId: c.accessKeyId,
        SecretAccessKey: c.secretAccessKey,
        Token: c.sessionToken,
        Expiration: c.expiration,
      });
    }
    return new Response("", { status: 404 });
  }

  function container(req: Request): Response {
    if (
      o.containerAuthToken !== undefined &&
      req.headers.get("authorization") !== o.containerAuthToken
    ) {
      seen.push({ api: "container", outcome: "401" });
      return Response.json({ code: "AccessDenied", message: "bad token" }, { status: 401 });
    }
    const c = issue(`arn:aws:iam::${ACCOUNT}:role/task-role`);
    seen.push({ api: "container", outcome: "ok" });
    return Response.json({
      AccessKeyId: c.accessKeyId,
      SecretAccessKey: c.secretAccessKey,
      Token: c.sessionToken,
      Expiration: c.expiration,
    });
  }

  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async (req) => {
      const path = new URL(req.url).pathname;
      const body = await req.text();
      if (path.startsWith("/latest/")) return imds(req, path);
      if (path === "/container-credentials") return container(req);
      if (req.method === "POST" && path === "/") {
        if (req.headers.get("x-amz-target")) return await secretsManager(req, body);
        return await sts(req, body);
      }
      return new Response("not found", { status: 404 });
    },
  );
  const addr = server.addr as Deno.NetAddr;
  return Promise.resolve({
    url: `http://127.0.0.1:${addr.port}`,
    region: o.region,
    seen,
    putSecret: (name, secret) => void secrets.set(name, secret),
    arnOf,
    close: () => server.shutdown(),
  });
}
