/**
 * Checkpoint as one DynamoDB item per application name (the head), plus
 * chunk items for model snapshots too large for one item.
 *
 * Every save of the head is conditional on the `version` attribute this store
 * last saw, so two service instances using the same application name cannot
 * interleave their checkpoints: the second writer gets CheckpointConflictError
 * and must stop.
 *
 * Models up to 350 KB are stored inline in the head (DynamoDB items hold at
 * most 400 KB). Larger ones (e.g. a few keyed models) are split into chunk
 * items `APP#chunk#TOKEN#i` of 350 KB, written BEFORE the head that names
 * them (token, count, SHA-256): the conditional head write is the one atomic
 * commit, so a reader sees the old or the new checkpoint, never a mix, and
 * this works with PutItem/GetItem/UpdateItem alone (no transactions: a
 * TransactWriteItems holds at most 4 MB anyway). The token is registered in
 * the head's `pending` list before its chunks are written, so chunks of a
 * save that never committed (a kill mid-save, a lost conflict) are found and
 * deleted by the next successful save, as are the chunks a new head replaced.
 * Beyond `maxModelBytes` (default 32 MB) saving is refused with a hint to use
 * the S3 store (`--checkpoint s3:BUCKET[/PREFIX]/APP`).
 */
import {
  ConditionalCheckFailedException,
  CreateTableCommand,
  DeleteItemCommand,
  DescribeTableCommand,
  GetItemCommand,
  PutItemCommand,
  UpdateItemCommand,
  ResourceInUseException,
  type AttributeValue,
  type DynamoDBClient,
} from '@aws-sdk/client-dynamodb';
import { createHash, randomBytes } from 'node:crypto';
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

/** Largest model snapshot kept inline in the head item. */
export const DYNAMODB_MAX_INLINE_MODEL_BYTES = 350 * 1024;
/** Size of one model chunk item's data. */
export const DYNAMODB_CHUNK_BYTES = 350 * 1024;
/** Default largest model snapshot (in chunks); each checkpoint writes and each start reads all of it. */
export const DYNAMODB_DEFAULT_MAX_MODEL_BYTES = 32 * 1024 * 1024;
/** DynamoDB's item size limit (names + values). */
const DYNAMODB_MAX_ITEM_BYTES = 400 * 1024;
/** Chunk reads/writes in flight at once. */
const CHUNK_CONCURRENCY = 4;

export interface DynamoDbCheckpointStoreOptions {
  client: DynamoDBClient;
  tableName: string;
  /** Item key value: one checkpoint per application. */
  applicationName: string;
  /** Name of the table's string partition key. Default `app`. */
  keyAttribute?: string;
  /** Largest model snapshot, inline or chunked. Default 32 MB. */
  maxModelBytes?: number;
}

/** Chunks written by one save: `APP#chunk#token#0..count-1`. */
interface ChunkSet {
  token: string;
  count: number;
}

const chunkSetText = (c: ChunkSet): string => `${c.token}:${c.count}`;
function parseChunkSet(text: string): ChunkSet | undefined {
  const m = /^([0-9a-f]{8,64}):(\d{1,6})$/.exec(text);
  return m ? { token: m[1]!, count: Number(m[2]) } : undefined;
}

/** Runs `fn` over `items` with at most `limit` calls in flight; rejects with the first failure. */
async function eachLimited<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
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
  /** Chunk sets the head named when last seen (its models, and uncommitted saves): deleted after our next commit. */
  private garbage: ChunkSet[] = [];

  constructor(opts: DynamoDbCheckpointStoreOptions) {
    this.client = opts.client;
    this.table = opts.tableName;
    this.app = opts.applicationName;
    this.key = opts.keyAttribute ?? 'app';
    this.maxModelBytes = opts.maxModelBytes ?? DYNAMODB_DEFAULT_MAX_MODEL_BYTES;
  }

  /** Largest model snapshot this store saves (a caller may check its models against it early). */
  get modelByteLimit(): number {
    return this.maxModelBytes;
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
    this.garbage = item !== undefined ? this.chunkSetsOf(item) : [];
    // A head with only `pending` (a first chunked save that never committed) is no checkpoint yet.
    if (item === undefined || item['version'] === undefined) {
      this.version = 0;
      return undefined;
    }
    const cp = await this.decode(item);
    this.version = this.readVersion(item);
    return cp;
  }

  async save(cp: Checkpoint): Promise<void> {
    const models = cp.models;
    if (models !== undefined && models.byteLength > this.maxModelBytes) {
      throw new Error(
        `Model snapshot is ${models.byteLength} bytes; the DynamoDB checkpoint store ${this.location} keeps at most ${this.maxModelBytes} bytes. ` +
          `Use an S3 checkpoint for models this large: --checkpoint s3:BUCKET[/PREFIX]/APP.`,
      );
    }
    const shardsJson = JSON.stringify(cp.shards);
    const headBytes = Buffer.byteLength(shardsJson, 'utf8') + this.app.length + (cp.stream?.length ?? 0) + 400;
    const inline = models === undefined || (models.byteLength <= DYNAMODB_MAX_INLINE_MODEL_BYTES && models.byteLength + headBytes <= DYNAMODB_MAX_ITEM_BYTES);
    if (headBytes > DYNAMODB_MAX_ITEM_BYTES) {
      throw new Error(`Checkpoint positions take about ${headBytes} bytes, over DynamoDB's 400 KB item limit; use --checkpoint s3:BUCKET[/PREFIX]/APP.`);
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
    let chunks: ChunkSet | undefined;
    if (models !== undefined && !inline) {
      chunks = { token: writeToken, count: Math.ceil(models.byteLength / DYNAMODB_CHUNK_BYTES) };
      await this.registerPending(chunks, expected);
      await this.writeChunks(chunks, models);
      item['chunks'] = { S: chunkSetText(chunks) };
      item['modelsSha256'] = { S: createHash('sha256').update(models).digest('hex') };
    } else if (models !== undefined && models.byteLength > 0) {
      // Empty binary values are not accepted everywhere; modelsLength 0 restores them.
      item['models'] = { B: models };
    }
    try {
      await this.client.send(
        new PutItemCommand({
          TableName: this.table,
          Item: item,
          ...(expected === 0
            ? { ConditionExpression: 'attribute_not_exists(#v)', ExpressionAttributeNames: { '#v': 'version' } }
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
        await this.committed(next, chunks);
        return;
      }
      if (chunks !== undefined) await this.deleteChunks([chunks]).catch(() => undefined);
      const found = current?.['version'] === undefined ? 'no checkpoint' : `version ${current['version'].N ?? '?'}`;
      // Stay fenced: later saves must not overwrite the other writer's checkpoint.
      this.fenced = true;
      throw new CheckpointConflictError(
        `Checkpoint ${this.location} was changed by another writer (expected version ${expected}, found ${found}). ` +
          `Is another instance running with application name "${this.app}"? Not overwriting it.`,
      );
    }
    await this.committed(next, chunks);
  }

  /** After our head write: chunks the old head named are garbage now (best effort; the next save retries). */
  private async committed(version: number, chunks: ChunkSet | undefined): Promise<void> {
    this.version = version;
    const garbage = this.garbage.filter((g) => g.token !== chunks?.token);
    this.garbage = chunks !== undefined ? [chunks] : [];
    if (garbage.length > 0) {
      await this.deleteChunks(garbage).catch(() => {
        this.garbage.push(...garbage);
      });
    }
  }

  /**
   * Adds `chunks` to the head's `pending` list (without changing its version,
   * and only while the head is still at `expected`), so they can be found
   * and removed if this save never commits.
   */
  private async registerPending(chunks: ChunkSet, expected: number): Promise<void> {
    try {
      const res = await this.client.send(
        new UpdateItemCommand({
          TableName: this.table,
          Key: { [this.key]: { S: this.app } },
          UpdateExpression: 'SET #p = list_append(if_not_exists(#p, :empty), :mine)',
          ConditionExpression: expected === 0 ? 'attribute_not_exists(#v)' : '#v = :expected',
          ExpressionAttributeNames: { '#p': 'pending', '#v': 'version' },
          ExpressionAttributeValues: {
            ':empty': { L: [] },
            ':mine': { L: [{ S: chunkSetText(chunks) }] },
            ...(expected === 0 ? {} : { ':expected': { N: String(expected) } }),
          },
          ReturnValues: 'ALL_NEW',
        }),
      );
      // Uncommitted chunk sets of earlier saves (ours or a crashed writer's) become garbage with our commit.
      for (const g of this.chunkSetsOf(res.Attributes ?? {})) if (!this.garbage.some((x) => x.token === g.token)) this.garbage.push(g);
    } catch (e) {
      if (!(e instanceof ConditionalCheckFailedException) && (e as Error).name !== 'ConditionalCheckFailedException') throw inAwsCall(e, `DynamoDB UpdateItem ${this.location}`);
      this.fenced = true;
      throw new CheckpointConflictError(
        `Checkpoint ${this.location} was changed by another writer (expected version ${expected}). ` +
          `Is another instance running with application name "${this.app}"? Not overwriting it.`,
      );
    }
  }

  private chunkKey(c: ChunkSet, i: number): Record<string, AttributeValue> {
    return { [this.key]: { S: `${this.app}#chunk#${c.token}#${i}` } };
  }

  private async writeChunks(c: ChunkSet, models: Uint8Array): Promise<void> {
    const indexes = Array.from({ length: c.count }, (_, i) => i);
    await eachLimited(indexes, CHUNK_CONCURRENCY, async (i) => {
      const data = models.subarray(i * DYNAMODB_CHUNK_BYTES, Math.min(models.byteLength, (i + 1) * DYNAMODB_CHUNK_BYTES));
      try {
        await this.client.send(new PutItemCommand({ TableName: this.table, Item: { ...this.chunkKey(c, i), data: { B: data } } }));
      } catch (e) {
        throw inAwsCall(e, `DynamoDB PutItem ${this.location} (model chunk ${i + 1} of ${c.count})`);
      }
    });
  }

  private async deleteChunks(sets: ChunkSet[]): Promise<void> {
    const keys = sets.flatMap((c) => Array.from({ length: c.count }, (_, i) => this.chunkKey(c, i)));
    await eachLimited(keys, CHUNK_CONCURRENCY, async (Key) => {
      await this.client.send(new DeleteItemCommand({ TableName: this.table, Key }));
    });
  }

  private async readChunks(c: ChunkSet, length: number, sha256: string | undefined): Promise<Uint8Array> {
    const out = new Uint8Array(length);
    const indexes = Array.from({ length: c.count }, (_, i) => i);
    await eachLimited(indexes, CHUNK_CONCURRENCY, async (i) => {
      let res;
      try {
        res = await this.client.send(new GetItemCommand({ TableName: this.table, Key: this.chunkKey(c, i), ConsistentRead: true }));
      } catch (e) {
        throw inAwsCall(e, `DynamoDB GetItem ${this.location} (model chunk ${i + 1} of ${c.count})`);
      }
      const data = res.Item?.['data']?.B;
      if (data === undefined) throw new CheckpointCorruptError(this.location, `model chunk ${i + 1} of ${c.count} is missing`);
      const at = i * DYNAMODB_CHUNK_BYTES;
      const want = Math.min(DYNAMODB_CHUNK_BYTES, length - at);
      if (data.byteLength !== want) throw new CheckpointCorruptError(this.location, `model chunk ${i + 1} of ${c.count} has ${data.byteLength} bytes, expected ${want}`);
      out.set(data, at);
    });
    if (sha256 !== undefined && createHash('sha256').update(out).digest('hex') !== sha256) {
      throw new CheckpointCorruptError(this.location, 'model chunks do not match the checksum in the checkpoint');
    }
    return out;
  }

  /** The chunk sets an item names: its committed models and pending (possibly orphaned) saves. */
  private chunkSetsOf(item: Record<string, AttributeValue>): ChunkSet[] {
    const out: ChunkSet[] = [];
    const committed = item['chunks']?.S;
    if (committed !== undefined) {
      const c = parseChunkSet(committed);
      if (c) out.push(c);
    }
    for (const p of item['pending']?.L ?? []) {
      const c = p.S !== undefined ? parseChunkSet(p.S) : undefined;
      if (c && !out.some((x) => x.token === c.token)) out.push(c);
    }
    return out;
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

  private async decode(item: Record<string, AttributeValue>): Promise<Checkpoint> {
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
    const chunked = item['chunks']?.S;
    if (chunked !== undefined) {
      const c = parseChunkSet(chunked);
      if (c === undefined || modelsLength < 0 || c.count !== Math.ceil(modelsLength / DYNAMODB_CHUNK_BYTES)) {
        throw new CheckpointCorruptError(this.location, `chunks ${JSON.stringify(chunked)} do not fit modelsLength ${modelsLength}`);
      }
      cp.models = await this.readChunks(c, modelsLength, item['modelsSha256']?.S);
    } else if (modelsLength >= 0) {
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
