/**
 * The AWS SDK clients are optional peer dependencies: the library (forests,
 * detection) never loads them, so a library user does not install ~30 MB of
 * SDK. Only `run` and `generate --to-kinesis` need them; this loads their
 * modules and turns a missing SDK package into one actionable line.
 */

/** Every package the AWS commands load (the optional peer dependencies). */
export const AWS_SDK_PACKAGES = ['@aws-sdk/client-dynamodb', '@aws-sdk/client-kinesis', '@aws-sdk/client-s3', '@aws-sdk/client-sns', '@smithy/node-http-handler'];

/** The module `load()` yields, or the message to print when an AWS SDK package is not installed. */
export async function loadAwsCommand<T>(command: string, load: () => Promise<T>): Promise<{ module: T } | { missing: string }> {
  try {
    return { module: await load() };
  } catch (error) {
    const e = error as { code?: string; message?: string };
    const m = /Cannot find (?:package|module) '((?:@aws-sdk|@smithy)\/[^/']+)/.exec(e.message ?? '');
    if (e.code !== 'ERR_MODULE_NOT_FOUND' || m === null) throw error;
    return {
      missing:
        `rcf-stream ${command}: needs the AWS SDK, which is optional for library use and not installed here (${m[1]} is missing). ` +
        `Install it beside rcf-stream: npm install ${AWS_SDK_PACKAGES.join(' ')}`,
    };
  }
}
