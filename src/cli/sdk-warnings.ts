/**
 * The AWS SDK's NodeVersionSupportWarning, decided once for the command line.
 *
 * On Node 20 every AWS SDK v3 client prints a multi-line warning that SDK
 * releases published after early January 2027 will need Node 22. rcf-stream
 * supports Node >= 20 with the SDK versions its lockfile pins, so the warning
 * says nothing actionable to someone running `rcf-stream run`, and it came
 * before every `run`, `generate --to-kinesis` and `demo`. The CLI entry turns
 * it off through the SDK's own switch, unless the user set that switch
 * (`AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=false` shows it again).
 * Library users are not affected: only the CLI entry calls this.
 */
export const SDK_NODE_WARNING_SWITCH = 'AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED';

export function silenceSdkNodeVersionWarning(env: NodeJS.ProcessEnv = process.env): void {
  if (env[SDK_NODE_WARNING_SWITCH] === undefined) env[SDK_NODE_WARNING_SWITCH] = 'true';
}
