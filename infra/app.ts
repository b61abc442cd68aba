/**
 * CDK app: `npm run synth` (or `npx cdk synth`) bundles the handler and writes
 * the CloudFormation template to infra/cdk.out/RcfStream.template.json, with no
 * AWS account or credentials (the stack is environment-agnostic).
 *
 * Context (cdk -c key=value): inputShards, batchSize, stackName.
 */
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { bundleHandler, projectRoot } from './bundle.js';
import { RcfStreamStack, defaultCodeDir } from './stack.js';

const app = new App();
const root = projectRoot();
const number = (key: string): number | undefined => {
  const v: unknown = app.node.tryGetContext(key);
  return v === undefined ? undefined : Number(v);
};
const stackName = (app.node.tryGetContext('stackName') as string | undefined) ?? 'RcfStream';
new RcfStreamStack(app, stackName, {
  codeDir: bundleHandler(defaultCodeDir(root), root),
  inputShards: number('inputShards'),
  batchSize: number('batchSize'),
  description: 'rcf-stream: Random Cut Forest anomaly detection on Kinesis with AWS Lambda',
});
// Every synth is checked: a cdk-nag finding fails it.
Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
app.synth();
