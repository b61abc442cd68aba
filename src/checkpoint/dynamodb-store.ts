/**
 * Checkpoint as one DynamoDB item per application name.
 *
 * Every save is conditional on the `version` attribute this store last saw, so
 * two service instances using the same application name cannot interleave
 * their checkpoints: the second writer gets CheckpointConflictError and must
 * stop. Models are stored inline as Binary; DynamoDB items are limited to
 * 400 KB, so models over 350 KB are refused with a hint to use the S3 store.
 */
import {
  ConditionalCheckFailedException,
  CreateTableCommand,
  DescribeTableCommand,
  GetItemCommand,
  PutItemCommand,
  ResourceInUseException,
  type AttributeValue,
  type DynamoDBClient,
} from '@aws-sdk/client-dynamodb';
import { randomBytes } from 'node:crypto';
import {
  CheckpointConflictError,
  CheckpointCorruptError,
  validateShards,
  validateStream,
  validateUpdatedAt,
  type Checkpoint,
  type CheckpointStore,
} from './checkpoint-store.js';
import { inAwsCall, sleep } from '../aws/retry.js';

export const DYNAMODB_MAX_INLINE_MODEL_BYTES = 350 * 1024;
/** DynamoDB's item size limit (names + values). */
const DYNAMODB_MAX_ITEM_BYTES = 400 * 1024;

export interface DynamoDbCheckpointStoreOptions {
  client: DynamoDBClient;
  tableName: string;
  /** Item key value: one checkpoint per application. */
  applicationName: string;
  /** Name of the table's string partition key. Default `app`. */
  keyAttribute?: string;
  /** Largest inline model snapshot; default and maximum 350 KB. */
  maxModelBytes?: number;
}

export class DynamoDbCheckpointStore implements CheckpointStore {
  private readonly client: DynamoDBClient;
  private readonly table: string;
  private readonly app: string;
  private readonly key: string;
  private readonly maxModelBytes: number;
  /** Version of the item as last loaded/saved by this store; 0 = known absent; undefined = never looked. */
  private version: number | undefined;
  /** Set by a conflict; cleared only by an explicit load(). */
  private fenced = false;

  constructor(opts: DynamoDbCheckpointStoreOptions) {
    this.client = opts.client;
    this.table = opts.tableName;
    this.app = opts.applicationName;
    this.key = opts.keyAttribute ?? 'app';
    this.maxModelBytes = Math.min(opts.maxModelBytes ?? DYNAMODB_MAX_INLINE_MODEL_BYTES, DYNAMODB_MAX_INLINE_MODEL_BYTES);
  }

  private get location(): string {
    return `dynamodb://${this.table}/${this.app}`;
  }

  /** Version seen last (for diagnostics and tests). */
  get currentVersion(): number | undefined {
    return this.version;
  }

  async load(): Promise<Checkpoint | undefined> {
    const item = await this.getItem();
    this.fenced = false;
    if (item === undefined) {
      this.version = 0;
      return undefined;
    }
    const cp = this.decode(item);
    this.version = this.readVersion(item);
    return cp;
  }

  async save(cp: Checkpoint): Promise<void> {
    const models = cp.models;
    if (models !== undefined && models.byteLength > this.maxModelBytes) {
      throw new Error(
        `Model snapshot is ${models.byteLength} bytes; the DynamoDB checkpoint store keeps at most ${this.maxModelBytes} bytes inline ` +
          `(items are limited to 400 KB). Use the S3 checkpoint store (S3CheckpointStore) for models this large.`,
      );
    }
    const shardsJson = JSON.stringify(cp.shards);
    const approxSize = shardsJson.length + (models?.byteLength ?? 0) + this.app.length + 200;
    if (approxSize > DYNAMODB_MAX_ITEM_BYTES) {
      throw new Error(`Checkpoint item would be about ${approxSize} bytes, over DynamoDB's 400 KB item limit; use the S3 checkpoint store.`);
    }
    if (this.fenced) {
      throw new CheckpointConflictError(`Checkpoint ${this.location} belongs to another writer since a conflicting save; call load() to take it over deliberately.`);
    }
    // Never loaded: only creating the item is allowed, so a store cannot blindly overwrite another writer.
    const expected = this.version ?? 0;
    const next = expected + 1;
    // Lets a save whose response was lost (and then re-sent by the SDK) recognise its own write.
    const writeToken = randomBytes(12).toString('hex');
    const item: Record<string, AttributeValue> = {
      [this.key]: { S: this.app },
      version: { N: String(next) },
      updatedAt: { S: cp.updatedAt },
      shards: { S: shardsJson },
      modelsLength: { N: String(models ? models.byteLength : -1) },
      writeToken: { S: writeToken },
    };
    if (cp.stream !== undefined) item['stream'] = { S: cp.stream };
    // Empty binary values are not accepted everywhere; modelsLength 0 restores them.
    if (models !== undefined && models.byteLength > 0) item['models'] = { B: models };
    try {
      await this.client.send(
        new PutItemCommand({
          TableName: this.table,
          Item: item,
          ...(expected === 0
            ? { ConditionExpression: 'attribute_not_exists(#k)', ExpressionAttributeNames: { '#k': this.key } }
            : {
                ConditionExpression: '#v = :expected',
                ExpressionAttributeNames: { '#v': 'version' },
                ExpressionAttributeValues: { ':expected': { N: String(expected) } },
              }),
        }),
      );
    } catch (e) {
      if (!(e instanceof ConditionalCheckFailedException) && (e as Error).name !== 'ConditionalCheckFailedException') throw inAwsCall(e, `DynamoDB PutItem ${this.location}`);
      const current = await this.getItem();
      if (current?.['writeToken']?.S === writeToken) {
        this.version = next;
        return;
      }
      const found = current === undefined ? 'no item' : `version ${current['version']?.N ?? '?'}`;
      // Stay fenced: later saves must not overwrite the other writer's checkpoint.
      this.fenced = true;
      throw new CheckpointConflictError(
        `Checkpoint ${this.location} was changed by another writer (expected version ${expected}, found ${found}). ` +
          `Is another instance running with application name "${this.app}"? Not overwriting it.`,
      );
    }
    this.version = next;
  }

  /** Creates the table (on-demand billing) if missing and waits until it is ACTIVE. For setup scripts and tests. */
  static async createTable(client: DynamoDBClient, tableName: string, keyAttribute = 'app', timeoutMs = 60_000): Promise<void> {
    try {
      await client.send(
        new CreateTableCommand({
          TableName: tableName,
          AttributeDefinitions: [{ AttributeName: keyAttribute, AttributeType: 'S' }],
          KeySchema: [{ AttributeName: keyAttribute, KeyType: 'HASH' }],
          BillingMode: 'PAY_PER_REQUEST',
        }),
      );
    } catch (e) {
      if (!(e instanceof ResourceInUseException)) throw e;
    }
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const d = await client.send(new DescribeTableCommand({ TableName: tableName }));
      if (d.Table?.TableStatus === 'ACTIVE') return;
      if (Date.now() > deadline) throw new Error(`DynamoDB table ${tableName} not ACTIVE after ${timeoutMs} ms`);
      await sleep(100);
    }
  }

  private async getItem(): Promise<Record<string, AttributeValue> | undefined> {
    try {
      const res = await this.client.send(
        new GetItemCommand({ TableName: this.table, Key: { [this.key]: { S: this.app } }, ConsistentRead: true }),
      );
      return res.Item;
    } catch (e) {
      throw inAwsCall(e, `DynamoDB GetItem ${this.location}`);
    }
  }

  private readVersion(item: Record<string, AttributeValue>): number {
    const v = Number(item['version']?.N);
    if (!Number.isInteger(v) || v < 1) throw new CheckpointCorruptError(this.location, 'version attribute is missing or invalid');
    return v;
  }

  private decode(item: Record<string, AttributeValue>): Checkpoint {
    this.readVersion(item);
    const shardsJson = item['shards']?.S;
    if (shardsJson === undefined) throw new CheckpointCorruptError(this.location, 'shards attribute is missing');
    let shards: unknown;
    try {
      shards = JSON.parse(shardsJson);
    } catch (e) {
      throw new CheckpointCorruptError(this.location, `shards is not JSON (${(e as Error).message})`);
    }
    const cp: Checkpoint = {
      shards: validateShards(shards, this.location),
      updatedAt: validateUpdatedAt(item['updatedAt']?.S, this.location),
    };
    const stream = validateStream(item['stream']?.S, this.location);
    if (stream !== undefined) cp.stream = stream;
    const modelsLength = Number(item['modelsLength']?.N ?? '-1');
    const stored = item['models']?.B;
    if (!Number.isInteger(modelsLength) || modelsLength < -1) throw new CheckpointCorruptError(this.location, 'modelsLength is invalid');
    if (modelsLength >= 0) {
      const bytes = stored ?? new Uint8Array(0);
      if (bytes.byteLength !== modelsLength) {
        throw new CheckpointCorruptError(this.location, `models has ${bytes.byteLength} bytes, expected ${modelsLength}`);
      }
      cp.models = new Uint8Array(bytes);
    } else if (stored !== undefined) {
      throw new CheckpointCorruptError(this.location, 'models present but modelsLength says none');
    }
    return cp;
  }
}
