import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clientConfig, endpointOf, regionOfProfile, secretsOf } from './config.js';

let directory: string;
beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), 'wal-s3-config-'));
  await writeFile(
    join(directory, 'config'),
    '# comment\n[default]\nregion = us-west-2\n\n[profile archiver]\noutput = json\nregion=eu-west-3 ; comment\n[profile  spaced ]\nregion = sa-east-1\n[archiver]\nregion = wrong\n',
  );
});
afterAll(() => rm(directory, { recursive: true, force: true }));

describe('AWS configuration', () => {
  it("reads a profile's region from the config file", async () => {
    const env = { AWS_CONFIG_FILE: join(directory, 'config') };
    expect(await regionOfProfile(env, 'default')).toBe('us-west-2');
    expect(await regionOfProfile(env, 'archiver')).toBe('eu-west-3');
    expect(await regionOfProfile(env, 'spaced')).toBe('sa-east-1');
    expect(await regionOfProfile(env, 'other')).toBeUndefined();
    expect(await regionOfProfile({ AWS_CONFIG_FILE: join(directory, 'missing') }, 'default')).toBeUndefined();
  });

  it('takes the S3 endpoint variable first, and path style with WHEN_REQUIRED checksums for an endpoint', () => {
    expect(endpointOf({ AWS_ENDPOINT_URL: 'http://a', AWS_ENDPOINT_URL_S3: 'http://b' })).toBe('http://b');
    expect(endpointOf({ AWS_ENDPOINT_URL: '' })).toBeUndefined();
    const custom = clientConfig({
      env: { AWS_ENDPOINT_URL: 'http://127.0.0.1:9000' },
      requestTimeoutMs: 1000,
    });
    expect(custom).toMatchObject({
      endpoint: 'http://127.0.0.1:9000',
      forcePathStyle: true,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      maxAttempts: 1,
    });
    const aws = clientConfig({ env: { AWS_REGION: 'eu-central-1' }, requestTimeoutMs: 1000 });
    expect(aws.endpoint).toBeUndefined();
    expect(aws.forcePathStyle).toBeUndefined();
    expect(aws.requestChecksumCalculation).toBeUndefined();
    expect(aws.region).toBe('eu-central-1');
  });

  it('uses the keys of the environment as they are', async () => {
    const config = clientConfig({
      env: { AWS_ACCESS_KEY_ID: 'AKIA1', AWS_SECRET_ACCESS_KEY: 'secret-1', AWS_SESSION_TOKEN: 'token-1' },
      requestTimeoutMs: 1000,
    });
    expect(config.credentials).toEqual({
      accessKeyId: 'AKIA1',
      secretAccessKey: 'secret-1',
      sessionToken: 'token-1',
    });
    expect(secretsOf({ AWS_SECRET_ACCESS_KEY: 'secret-1', AWS_SESSION_TOKEN: 'token-1' })).toEqual([
      'secret-1',
      'token-1',
    ]);
  });
});
