/**
 * Triton's model configuration (`config.pbtxt`, protobuf text format): the subset a
 * repository of ONNX models needs. Parsed here so `arteria serve-models` reads the same
 * repository Triton does, and written for the models Arteria ships.
 */
import { ArteriaError } from '@arteria/protocol';
import type { TensorType } from '@arteria/sdk';

type PbValue = string | number | PbMessage;
interface PbMessage {
  [field: string]: PbValue[];
}

const TOKEN = /\s*(?:#[^\n]*\n?\s*)*(?:("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')|([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)|([A-Za-z_][\w.]*)|([{}[\]:,;<>]))/y;

function tokenize(text: string): string[] {
  const tokens: string[] = [];
  TOKEN.lastIndex = 0;
  while (TOKEN.lastIndex < text.length) {
    if (/^\s*(?:#[^\n]*\s*)*$/.test(text.slice(TOKEN.lastIndex))) break;
    const at = TOKEN.lastIndex;
    const m = TOKEN.exec(text);
    if (!m) throw new ArteriaError('CONFIG_INVALID', `config.pbtxt: unexpected text at offset ${at}: ${JSON.stringify(text.slice(at, at + 20))}`);
    tokens.push(m[1] ?? m[2] ?? m[3] ?? m[4] ?? '');
  }
  return tokens;
}

function parseText(text: string): PbMessage {
  const tokens = tokenize(text);
  let i = 0;
  const fail = (what: string): never => {
    throw new ArteriaError('CONFIG_INVALID', `config.pbtxt: ${what} (token ${i}: ${tokens[i] ?? 'end of file'})`);
  };
  const scalar = (t: string): PbValue => {
    if (t.startsWith('"') || t.startsWith("'")) return t.slice(1, -1).replace(/\\(.)/g, '$1');
    if (/^[-+]?(\d|\.\d)/.test(t)) return Number(t);
    if (/^[A-Za-z_]/.test(t)) return t; // enum value or true/false
    return fail('expected a value');
  };
  const value = (): PbValue => {
    const t = tokens[i++];
    if (t === undefined) return fail('expected a value');
    if (t === '{' || t === '<') return message(t === '{' ? '}' : '>');
    return scalar(t);
  };
  const message = (end: string | undefined): PbMessage => {
    const out: PbMessage = {};
    for (;;) {
      const name = tokens[i];
      if (name === undefined) return end === undefined ? out : fail(`expected ${end}`);
      if (name === end) {
        i++;
        return out;
      }
      if (!/^[A-Za-z_]/.test(name)) fail('expected a field name');
      i++;
      if (tokens[i] === ':') i++;
      const values = (out[name] ??= []);
      if (tokens[i] === '[') {
        i++;
        while (tokens[i] !== ']') {
          values.push(value());
          if (tokens[i] === ',') i++;
          else if (tokens[i] !== ']') fail('expected , or ]');
        }
        i++;
      } else {
        values.push(value());
      }
      if (tokens[i] === ',' || tokens[i] === ';') i++;
    }
  };
  return message(undefined);
}

export interface TritonTensorConfig {
  name: string;
  type: TensorType;
  /** Without the batch dimension when maxBatchSize > 0 (Triton's convention); -1 is variable. */
  dims: number[];
}

export interface TritonModelConfig {
  name: string;
  /** `onnxruntime_onnx` for ONNX models. */
  platform: string;
  /** 0: the model takes no batch dimension from Triton; otherwise the largest batch. */
  maxBatchSize: number;
  inputs: TritonTensorConfig[];
  outputs: TritonTensorConfig[];
  defaultModelFilename: string;
}

const DATA_TYPES: Record<string, TensorType> = { TYPE_FP32: 'float32', TYPE_UINT8: 'uint8', TYPE_INT64: 'int64' };
const TYPE_NAMES: Record<TensorType, string> = { float32: 'TYPE_FP32', uint8: 'TYPE_UINT8', int64: 'TYPE_INT64' };

const one = (m: PbMessage, field: string): PbValue | undefined => m[field]?.at(-1);
const str = (m: PbMessage, field: string): string | undefined => {
  const v = one(m, field);
  return typeof v === 'string' ? v : undefined;
};

function tensors(m: PbMessage, field: 'input' | 'output', model: string): TritonTensorConfig[] {
  return (m[field] ?? []).map((entry) => {
    if (typeof entry !== 'object') throw new ArteriaError('CONFIG_INVALID', `${model}/config.pbtxt: ${field} must be a message`);
    const name = str(entry, 'name');
    const dataType = str(entry, 'data_type');
    const type = dataType === undefined ? undefined : DATA_TYPES[dataType];
    if (name === undefined || type === undefined) {
      throw new ArteriaError('CONFIG_INVALID', `${model}/config.pbtxt: each ${field} needs a name and a data_type of ${Object.keys(DATA_TYPES).join(', ')} (got ${String(dataType)})`);
    }
    const dims = (entry.dims ?? []).map(Number);
    if (dims.some((d) => !Number.isInteger(d) || d < -1)) throw new ArteriaError('CONFIG_INVALID', `${model}/config.pbtxt: ${field} ${name} has invalid dims`);
    return { name, type, dims };
  });
}

/** Parses a config.pbtxt; `directoryName` is the model's folder, which its name must match. */
export function parseModelConfig(text: string, directoryName: string): TritonModelConfig {
  const m = parseText(text);
  const name = str(m, 'name') ?? directoryName;
  if (name !== directoryName) throw new ArteriaError('CONFIG_INVALID', `${directoryName}/config.pbtxt names the model ${name}; it must match its folder`);
  const platform = str(m, 'platform') ?? (str(m, 'backend') === 'onnxruntime' ? 'onnxruntime_onnx' : '');
  if (platform !== 'onnxruntime_onnx') {
    throw new ArteriaError('CONFIG_INVALID', `${name}/config.pbtxt: platform "${platform}" is not served; Arteria serves onnxruntime_onnx models`);
  }
  const maxBatchSize = Number(one(m, 'max_batch_size') ?? 0);
  if (!Number.isInteger(maxBatchSize) || maxBatchSize < 0) throw new ArteriaError('CONFIG_INVALID', `${name}/config.pbtxt: max_batch_size must be a non-negative integer`);
  return {
    name,
    platform,
    maxBatchSize,
    inputs: tensors(m, 'input', name),
    outputs: tensors(m, 'output', name),
    defaultModelFilename: str(m, 'default_model_filename') ?? 'model.onnx',
  };
}

/** Writes a config.pbtxt Triton and `arteria serve-models` both read. */
export function writeModelConfig(config: Omit<TritonModelConfig, 'platform' | 'defaultModelFilename'> & { platform?: string }): string {
  const tensor = (t: TritonTensorConfig): string => `  {\n    name: "${t.name}"\n    data_type: ${TYPE_NAMES[t.type]}\n    dims: [ ${t.dims.join(', ')} ]\n  }`;
  return [
    `name: "${config.name}"`,
    `platform: "${config.platform ?? 'onnxruntime_onnx'}"`,
    `max_batch_size: ${config.maxBatchSize}`,
    `input [\n${config.inputs.map(tensor).join(',\n')}\n]`,
    `output [\n${config.outputs.map(tensor).join(',\n')}\n]`,
    '',
  ].join('\n');
}
