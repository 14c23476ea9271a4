/**
 * The AWS credential chain, in the order of the AWS SDKs' default chain:
 *
 * 1. environment: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN` (skipped
 *    when `AWS_PROFILE` names a profile, as the AWS SDK for JavaScript v3 does);
 * 2. the shared config and credentials files, profile `AWS_PROFILE` or `default`: static keys,
 *    `role_arn` with `source_profile` (or `credential_source`) through STS AssumeRole, `role_arn`
 *    with `web_identity_token_file`, `credential_process`;
 * 3. web identity: `AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN` through
 *    AssumeRoleWithWebIdentity;
 * 4. container credentials (`AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` / `_FULL_URI`);
 * 5. EC2 instance metadata (IMDSv2), unless `AWS_EC2_METADATA_DISABLED=true`.
 *
 * The first step that is configured wins; a configured step that fails is an error (it does not
 * fall through to a weaker identity). The result is cached per process, keyed by the AWS
 * environment, until five minutes before it expires.
 *
 * @module
 */

import { profileName, profileSettings, readSharedFiles, type SharedFiles } from "./config_files.ts";
import { containerConfigured, containerCredentials } from "./container.ts";
import { awsError } from "./fail.ts";
import { imdsCredentials, imdsDisabled } from "./imds.ts";
import type { AwsCredentials, Env } from "./net.ts";
import { processCredentials } from "./process.ts";
import { assumeRole, assumeRoleWithWebIdentity, type StsOptions } from "./sts.ts";

/** What a chain run needs. */
export interface ChainOptions {
  readonly env: Env;
  readonly signal?: AbortSignal | undefined;
  /** Per IMDS request. @default {1000} */
  readonly imdsTimeoutMs?: number;
}

const WHAT = "AWS credentials";
/** Credentials are refreshed this long before they expire (as the SDKs do). */
const REFRESH_MARGIN_MS = 5 * 60_000;

interface Entry {
  promise: Promise<AwsCredentials>;
}
const cache = new Map<string, Entry>();

/** Forgets cached credentials (tests; a library user rotating keys). */
export function clearAwsCredentialCache(): void {
  cache.clear();
}

/** Everything the chain reads from the environment, so a different setup gets its own entry. */
export const AWS_CHAIN_ENV_VARS: readonly string[] = [
  "HOME",
  "AWS_ACCESS_KEY_ID",
  "AWS_SECRET_ACCESS_KEY",
  "AWS_SESSION_TOKEN",
  "AWS_PROFILE",
  "AWS_CONFIG_FILE",
  "AWS_SHARED_CREDENTIALS_FILE",
  "AWS_WEB_IDENTITY_TOKEN_FILE",
  "AWS_ROLE_ARN",
  "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
  "AWS_CONTAINER_CREDENTIALS_FULL_URI",
  "AWS_EC2_METADATA_SERVICE_ENDPOINT",
  "AWS_EC2_METADATA_DISABLED",
  "AWS_ENDPOINT_URL_STS",
  "AWS_ENDPOINT_URL",
  "AWS_REGION",
  "AWS_DEFAULT_REGION",
];

/**
 * The credentials of the chain, cached per process until shortly before they expire. Parallel
 * callers share one resolution.
 *
 * @param o The environment and signal.
 * @returns The credentials (keep them in memory only).
 * @throws {HecateError} `secret_unresolved` (exit 18) naming the step and its status, or
 * listing what was tried when no step is configured.
 */
export async function awsCredentials(o: ChainOptions): Promise<AwsCredentials> {
  const key = JSON.stringify(AWS_CHAIN_ENV_VARS.map((n) => o.env(n) ?? null));
  const hit = cache.get(key);
  if (hit) {
    const creds = await hit.promise.catch(() => undefined);
    if (
      creds && (creds.expiresAt === undefined || creds.expiresAt - Date.now() > REFRESH_MARGIN_MS)
    ) {
      return creds;
    }
    if (cache.get(key) === hit) cache.delete(key);
  }
  const entry: Entry = { promise: runChain(o) };
  cache.set(key, entry);
  // A failure is not kept: the next call tries again.
  entry.promise.catch(() => {
    if (cache.get(key) === entry) cache.delete(key);
  });
  return await entry.promise;
}

/**
 * The region: `AWS_REGION`, `AWS_DEFAULT_REGION`, then the profile's `region` in the config file.
 *
 * @param env The environment.
 * @param files The shared files, when the caller has read them already.
 * @returns The region, or undefined when none is set.
 */
export async function awsRegion(env: Env, files?: SharedFiles): Promise<string | undefined> {
  const fromEnv = env("AWS_REGION") || env("AWS_DEFAULT_REGION");
  if (fromEnv) return fromEnv;
  files ??= await readSharedFiles(env);
  return files.config.get(profileName(env).name)?.region || undefined;
}

function envCredentials(env: Env): AwsCredentials | undefined {
  const id = env("AWS_ACCESS_KEY_ID"), secret = env("AWS_SECRET_ACCESS_KEY");
  if (!id && !secret) return undefined;
  if (!id || !secret) {
    throw awsError(
      `${WHAT} from the environment`,
      "incomplete",
      "set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or neither",
    );
  }
  return {
    accessKeyId: id,
    secretAccessKey: secret,
    sessionToken: env("AWS_SESSION_TOKEN") || undefined,
    origin: "environment",
  };
}

async function runChain(o: ChainOptions): Promise<AwsCredentials> {
  const { name, explicit } = profileName(o.env);
  // A profile named in AWS_PROFILE wins over keys in the environment, as in the AWS SDK for
  // JavaScript v3 (and the CLI's --profile): the keys stay available to `credential_source`.
  if (!explicit) {
    const fromEnv = envCredentials(o.env);
    if (fromEnv) return fromEnv;
  }
  const files = await readSharedFiles(o.env);
  const region = await awsRegion(o.env, files);
  const sts: StsOptions = { env: o.env, region, signal: o.signal };
  const fromProfile = await profileCredentials(files, name, sts, o, new Set());
  if (fromProfile) return fromProfile;
  if (explicit) {
    throw awsError(
      `${WHAT} of profile "${name}"`,
      "not found",
      "AWS_PROFILE names a profile with no credentials in ~/.aws/config or ~/.aws/credentials",
    );
  }
  const webToken = o.env("AWS_WEB_IDENTITY_TOKEN_FILE"), roleArn = o.env("AWS_ROLE_ARN");
  if (webToken && roleArn) {
    return await webIdentity(
      webToken,
      roleArn,
      o.env("AWS_ROLE_SESSION_NAME"),
      sts,
      "web identity",
    );
  }
  if (containerConfigured(o.env)) return await containerCredentials(o.env, o.signal);
  const tried = ["environment", `shared files (profile "${name}")`, "web identity", "container"];
  if (!imdsDisabled(o.env)) {
    const fromImds = await imdsCredentials(o.env, o.signal, o.imdsTimeoutMs);
    if (fromImds) return fromImds;
    tried.push("EC2 instance metadata");
  } else tried.push("EC2 instance metadata (disabled)");
  throw awsError(
    WHAT,
    "none found",
    "set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run where a role is attached",
    `tried ${tried.join(", ")}`,
  );
}

async function webIdentity(
  tokenFile: string,
  roleArn: string,
  sessionName: string | undefined,
  sts: StsOptions,
  origin: string,
): Promise<AwsCredentials> {
  let token: string;
  try {
    // Read on every call: the platform rotates the file.
    token = (await Deno.readTextFile(tokenFile)).trim();
  } catch {
    throw awsError(`${WHAT} from ${origin}`, "unreadable", "check the web identity token file");
  }
  return await assumeRoleWithWebIdentity(
    { roleArn, sessionName: sessionName || `hecate-${Date.now()}` },
    token,
    sts,
    origin,
  );
}

async function profileCredentials(
  files: SharedFiles,
  name: string,
  sts: StsOptions,
  o: ChainOptions,
  visited: Set<string>,
): Promise<AwsCredentials | undefined> {
  const s = profileSettings(files, name);
  if (!s) return undefined;
  const what = `${WHAT} of profile "${name}"`;
  const origin = `profile "${name}"`;
  if (s.role_arn) {
    if (visited.has(name)) {
      throw awsError(what, "malformed", "source_profile entries form a loop");
    }
    visited.add(name);
    const region = s.region || sts.region;
    const profileSts = { ...sts, region };
    const role = {
      roleArn: s.role_arn,
      sessionName: s.role_session_name || `hecate-${Date.now()}`,
      externalId: s.external_id,
      durationSeconds: s.duration_seconds ? Number(s.duration_seconds) : undefined,
    };
    if (s.web_identity_token_file) {
      return await webIdentity(
        s.web_identity_token_file,
        s.role_arn,
        s.role_session_name,
        profileSts,
        origin,
      );
    }
    let source: AwsCredentials | undefined;
    if (s.source_profile === name) source = staticKeys(s, origin);
    else if (s.source_profile) {
      source = await profileCredentials(files, s.source_profile, sts, o, visited);
    } else if (s.credential_source === "Environment") source = envCredentials(o.env);
    else if (s.credential_source === "EcsContainer") {
      source = await containerCredentials(o.env, o.signal);
    } else if (s.credential_source === "Ec2InstanceMetadata") {
      source = await imdsCredentials(o.env, o.signal, o.imdsTimeoutMs);
    } else {
      throw awsError(what, "malformed", "role_arn needs source_profile or credential_source");
    }
    if (!source) {
      throw awsError(
        what,
        "no source credentials",
        "the source_profile or credential_source gave none",
      );
    }
    return await assumeRole(source, role, profileSts, `${origin} role`);
  }
  const keys = staticKeys(s, origin);
  if (keys) return keys;
  if (s.credential_process) return await processCredentials(name, s.credential_process, o.signal);
  if (s.sso_session || s.sso_start_url) {
    // IAM Identity Center needs the SDK's token cache and refresh; the CLI can bridge it.
    throw awsError(
      what,
      "not supported",
      `add credential_process = aws configure export-credentials --profile ${name} --format process`,
      "SSO profile",
    );
  }
  return undefined;
}

function staticKeys(
  s: Readonly<Record<string, string>>,
  origin: string,
): AwsCredentials | undefined {
  if (!s.aws_access_key_id || !s.aws_secret_access_key) return undefined;
  return {
    accessKeyId: s.aws_access_key_id,
    secretAccessKey: s.aws_secret_access_key,
    sessionToken: s.aws_session_token || undefined,
    origin,
  };
}
