import {
  ChangeMessageVisibilityCommand,
  CreateQueueCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  SetQueueAttributesCommand,
  SQSClient,
  type Message,
} from '@aws-sdk/client-sqs';
import { z } from 'zod';
import { ArteriaError } from '@arteria/protocol';
import type { SqsWorkQueueConfig } from './sqs-queue-options.js';

/** SQS limits the port's times are fitted into (seconds). */
export const SQS_MAX_DELAY_S = 900;
export const SQS_MAX_VISIBILITY_S = 43_200;
/** Dead letters wait in the SQS dead-letter queue this long at most (the SQS maximum). */
const DLQ_RETENTION_S = 1_209_600;

/** SQS counts time in whole seconds: a time in ms rounds up, so nothing is visible early. */
export const toSeconds = (ms: number, max: number): number => Math.min(max, Math.max(0, Math.ceil(ms / 1000)));

/**
 * A task as an SQS message body (SQS bodies are text): JSON with the payload in base64.
 * Not message attributes: their MD5 on both sides doubled the cost of a send. `sendId`
 * names this send of the task, so a copy from an earlier send can be told apart.
 */
const TaskBody = z.strictObject({ v: z.literal(1), taskId: z.string(), dedupeId: z.string(), sendId: z.string(), enqueuedAt: z.number(), payload: z.base64() });
export type TaskBody = Omit<z.infer<typeof TaskBody>, 'payload'> & { payload: Buffer };

export interface TaskMessage {
  receiptHandle: string;
  /** undefined: not a task Arteria sent. */
  task: TaskBody | undefined;
  /** The body as received, for a dead letter of a message that is not a task. */
  raw: string;
}

const RECEIPT_GONE = new Set(['ReceiptHandleIsInvalid', 'MessageNotInflight', 'InvalidParameterValue', 'AWS.SimpleQueueService.MessageNotInflight']);

/** True when SQS refused a receipt handle: the message was deleted or is no longer leased under it. */
export const isReceiptGone = (err: unknown): boolean => err instanceof Error && RECEIPT_GONE.has(err.name);

export const unavailable = (what: string, err: unknown): ArteriaError =>
  err instanceof ArteriaError ? err : new ArteriaError('QUEUE_UNAVAILABLE', `SQS ${what} failed: ${(err as Error).message}`, { cause: err });

/** The SQS requests the queue makes, with Arteria's encoding of tasks. */
export class SqsWire {
  readonly client: SQSClient;
  workUrl = '';
  deadUrl = '';

  constructor(private readonly config: SqsWorkQueueConfig) {
    this.client = new SQSClient({
      region: config.region,
      ...(config.endpoint === '' ? {} : { endpoint: config.endpoint }),
      ...(config.accessKeyId === '' ? {} : { credentials: { accessKeyId: config.accessKeyId, secretAccessKey: config.secretAccessKey } }),
      requestHandler: { requestTimeout: config.requestTimeoutMs + config.longPollSeconds * 1000 },
    });
  }

  /** Creates both queues when missing and sets the redrive policy to the configuration. */
  async setup(): Promise<void> {
    try {
      this.deadUrl = await this.queueUrl(`${this.config.name}-dlq`, { MessageRetentionPeriod: String(DLQ_RETENTION_S) });
      const attributes = await this.client.send(new GetQueueAttributesCommand({ QueueUrl: this.deadUrl, AttributeNames: ['QueueArn'] }));
      const deadArn = required(attributes.Attributes?.QueueArn, 'GetQueueAttributes QueueArn');
      this.workUrl = await this.queueUrl(this.config.name, {});
      const redrive = JSON.stringify({ deadLetterTargetArn: deadArn, maxReceiveCount: this.config.maxDeliveries });
      await this.client.send(new SetQueueAttributesCommand({ QueueUrl: this.workUrl, Attributes: { RedrivePolicy: redrive } }));
    } catch (err) {
      throw unavailable(`setup of queue ${this.config.name} at ${this.config.endpoint || `region ${this.config.region}`}`, err);
    }
  }

  /** An existing queue's URL, or a new queue's: CreateQueue alone fails once the attributes differ (the redrive policy set after). */
  private async queueUrl(name: string, attributes: Record<string, string>): Promise<string> {
    try {
      return required((await this.client.send(new GetQueueUrlCommand({ QueueName: name }))).QueueUrl, 'GetQueueUrl');
    } catch (err) {
      if (!(err instanceof Error && /QueueDoesNotExist|NonExistentQueue/.test(err.name))) throw err;
    }
    return required((await this.client.send(new CreateQueueCommand({ QueueName: name, Attributes: attributes }))).QueueUrl, 'CreateQueue');
  }

  async send(url: string, task: TaskBody, delayMs: number): Promise<void> {
    const body = JSON.stringify({ v: 1, taskId: task.taskId, dedupeId: task.dedupeId, sendId: task.sendId, enqueuedAt: task.enqueuedAt, payload: task.payload.toString('base64') });
    await this.client.send(new SendMessageCommand({ QueueUrl: url, MessageBody: body, DelaySeconds: toSeconds(delayMs, SQS_MAX_DELAY_S) }));
  }

  async receive(url: string, max: number, visibilityS: number, waitS: number, signal?: AbortSignal): Promise<TaskMessage[]> {
    const received = await this.client.send(
      new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: Math.min(10, Math.max(1, max)), VisibilityTimeout: visibilityS, WaitTimeSeconds: waitS }),
      signal === undefined ? {} : { abortSignal: signal },
    );
    return (received.Messages ?? []).map(decode);
  }

  async changeVisibility(url: string, receiptHandle: string, seconds: number): Promise<void> {
    await this.client.send(new ChangeMessageVisibilityCommand({ QueueUrl: url, ReceiptHandle: receiptHandle, VisibilityTimeout: seconds }));
  }

  async delete(url: string, receiptHandle: string): Promise<void> {
    await this.client.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: receiptHandle }));
  }
}

function decode(message: Message): TaskMessage {
  const raw = message.Body ?? '';
  let task: TaskBody | undefined;
  try {
    const parsed = TaskBody.safeParse(JSON.parse(raw));
    if (parsed.success) task = { ...parsed.data, payload: Buffer.from(parsed.data.payload, 'base64') };
  } catch {
    task = undefined; // not JSON: not a task Arteria sent
  }
  return { receiptHandle: required(message.ReceiptHandle, 'ReceiveMessage ReceiptHandle'), task, raw };
}

function required<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new ArteriaError('QUEUE_UNAVAILABLE', `SQS answer without ${what}`);
  return value;
}
