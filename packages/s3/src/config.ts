import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { S3ClientConfig } from '@aws-sdk/client-s3';
import { defaultProvider } from '@aws-sdk/credential-provider-node';

export type Environment = Record<string, string | undefined>;

/** The region when neither the environment nor the profile names one, so a bare endpoint works. */
export const DEFAULT_REGION = 'us-east-1';

/** The secrets of an environment, to keep out of every message. */
export function secretsOf(env: Environment): string[] {
  return [env.AWS_SECRET_ACCESS_KEY, env.AWS_SESSION_TOKEN].filter(
    (value): value is string => value !== undefined && value.length >= 4,
  );
}

/** The endpoint of an S3-compatible store, if one is configured: the S3-specific variable first. */
export function endpointOf(env: Environment): string | undefined {
  const endpoint = env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL;
  return endpoint === undefined || endpoint === '' ? undefined : endpoint;
}

/**
 * The `region` of a profile in the shared config file (`[default]` or `[profile NAME]`), as the
 * SDK would read it: a machine set up with `aws configure` names its region there only.
 */
export async function regionOfProfile(env: Environment, profile: string): Promise<string | undefined> {
  const path = env.AWS_CONFIG_FILE || join(env.HOME || homedir(), '.aws', 'config');
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
  const sections = profile === 'default' ? ['default', 'profile default'] : [`profile ${profile}`];
  let inSection = false;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line.startsWith('[')) {
      inSection = sections.includes(line.slice(1, line.indexOf(']')).trim().replace(/\s+/g, ' '));
    } else if (inSection) {
      const match = /^region\s*=\s*([^\s#;]+)/.exec(line);
      if (match?.[1]) return match[1];
    }
  }
  return undefined;
}

const ignore = () => {};
/** The SDK logs nothing of ours: a library must not write to a command's output (ADR 0010). */
const SILENT_LOGGER = { trace: ignore, debug: ignore, info: ignore, warn: ignore, error: ignore };

export interface ClientSettings {
  env: Environment;
  requestTimeoutMs: number;
}

/**
 * The SDK client's configuration from an AWS environment: keys from the environment, else the
 * SDK's provider chain for `AWS_PROFILE` (shared files, SSO, process, container and instance
 * credentials). Retries are ours (ADR 0010), so the SDK makes one attempt per call.
 */
export function clientConfig(settings: ClientSettings): S3ClientConfig {
  const { env } = settings;
  const endpoint = endpointOf(env);
  const profile = env.AWS_PROFILE || 'default';
  const accessKeyId = env.AWS_ACCESS_KEY_ID;
  const secretAccessKey = env.AWS_SECRET_ACCESS_KEY;
  const credentials =
    accessKeyId && secretAccessKey
      ? {
          accessKeyId,
          secretAccessKey,
          ...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}),
        }
      : defaultProvider({
          profile,
          logger: SILENT_LOGGER,
          ...(env.AWS_SHARED_CREDENTIALS_FILE ? { filepath: env.AWS_SHARED_CREDENTIALS_FILE } : {}),
          ...(env.AWS_CONFIG_FILE ? { configFilepath: env.AWS_CONFIG_FILE } : {}),
        });
  const region = env.AWS_REGION;
  return {
    credentials,
    region: region ? region : async () => (await regionOfProfile(env, profile)) ?? DEFAULT_REGION,
    maxAttempts: 1,
    logger: SILENT_LOGGER,
    // The endpoint comes from `env` alone, never from the process environment behind its back.
    ignoreConfiguredEndpointUrls: true,
    ...(endpoint === undefined
      ? {}
      : {
          endpoint,
          forcePathStyle: true,
          // Other stores may not know the flexible checksum headers, or keep aws-chunked framing
          // as data; Content-MD5 (ours, on every PUT) is what they all verify.
          requestChecksumCalculation: 'WHEN_REQUIRED' as const,
          responseChecksumValidation: 'WHEN_REQUIRED' as const,
        }),
    requestHandler: {
      logger: SILENT_LOGGER,
      connectionTimeout: settings.requestTimeoutMs,
      // Inactivity, not total time: a large body on a slow link is fine while bytes move.
      socketTimeout: settings.requestTimeoutMs,
    },
  };
}
