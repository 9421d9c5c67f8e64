// The reference policy as an ONNX model (IR version 8, opset 17), written with core/policy/protobuf.ts.
//
// Graph inputs: `obs` [batch, obsDim] and, per adapted layer L of fc1, fc2, mean_head, the PEFT tensors
// `base_model.model.L.lora_A.weight` [L_r, in], `base_model.model.L.lora_B.weight` [out, L_r] and the
// scalar-like `L.lora_scaling` [1] (lora_alpha / r). The base weights are initializers. So the deployed
// policy and a candidate adapter run in ONE session, fed different LoRA inputs (B = 0 gives the base).
//   L.out = MatMul(x, L.weight_t) + L.bias + L.lora_scaling * MatMul(MatMul(x, Transpose(A)), Transpose(B))
//   h1 = Tanh(fc1.out), h2 = Tanh(fc2.out), mean = mean_head.out, log_std = Identity(log_std) [actDim]
// Field numbers follow onnx/onnx.proto (ModelProto, GraphProto, NodeProto, AttributeProto, TensorProto,
// ValueInfoProto, TypeProto, TensorShapeProto, OperatorSetIdProto, StringStringEntryProto).
import { ProtoWriter } from './protobuf.ts';
import { POLICY_LAYERS, type PolicyWeights } from './mlp.ts';

export const ONNX_IR_VERSION = 8;
export const ONNX_OPSET = 17;
const FLOAT = 1; // TensorProto.DataType.FLOAT
const ATTR_INTS = 7; // AttributeProto.AttributeType.INTS

export const ONNX_INPUT_OBS = 'obs';
export const ONNX_OUTPUT_MEAN = 'mean';
export const ONNX_OUTPUT_LOG_STD = 'log_std';
export const onnxLoraInputs = (layer: string) => ({
  A: `base_model.model.${layer}.lora_A.weight`,
  B: `base_model.model.${layer}.lora_B.weight`,
  scaling: `${layer}.lora_scaling`,
});

type Dim = number | string;

function valueInfo(w: ProtoWriter, name: string, dims: Dim[]): void {
  w.string(1, name);
  w.message(2, (type) =>
    type.message(1, (tensor) => {
      tensor.varint(1, FLOAT);
      tensor.message(2, (shape) => {
        for (const d of dims) shape.message(1, (dim) => (typeof d === 'number' ? dim.varint(1, d) : dim.string(2, d)));
      });
    }),
  );
}

function floatBytes(values: ArrayLike<number>): Uint8Array {
  const out = new Uint8Array(4 * values.length);
  const view = new DataView(out.buffer);
  for (let i = 0; i < values.length; i++) view.setFloat32(4 * i, values[i]!, true);
  return out;
}

function initializer(w: ProtoWriter, name: string, dims: number[], values: ArrayLike<number>): void {
  w.packedVarints(1, dims);
  w.varint(2, FLOAT);
  w.string(8, name);
  w.bytes(9, floatBytes(values));
}

function node(g: ProtoWriter, op: string, inputs: string[], outputs: string[], name: string, perm?: number[]): void {
  g.message(1, (n) => {
    for (const i of inputs) n.string(1, i);
    for (const o of outputs) n.string(2, o);
    n.string(3, name);
    n.string(4, op);
    if (perm) n.message(5, (a) => a.string(1, 'perm').packedVarints(8, perm).varint(20, ATTR_INTS));
  });
}

/** [out, in] row-major -> [in, out] row-major (MatMul wants x [N, in] @ W^T [in, out]). */
function transpose(weight: Float32Array, out: number, inF: number): Float32Array {
  const t = new Float32Array(weight.length);
  for (let o = 0; o < out; o++) for (let i = 0; i < inF; i++) t[i * out + o] = weight[o * inF + i]!;
  return t;
}

export function buildPolicyOnnx(options: { weights: PolicyWeights; producerVersion?: string; metadata?: Record<string, string> }): Uint8Array {
  const { weights } = options;
  const graph = new ProtoWriter();
  let x = ONNX_INPUT_OBS;
  POLICY_LAYERS.forEach((name, idx) => {
    const lin = `${name}`;
    const io = onnxLoraInputs(name);
    node(graph, 'MatMul', [x, `${lin}.weight_t`], [`${lin}.xw`], `${lin}/matmul`);
    node(graph, 'Add', [`${lin}.xw`, `${lin}.bias`], [`${lin}.base`], `${lin}/bias`);
    node(graph, 'Transpose', [io.A], [`${lin}.lora_A_t`], `${lin}/lora_A_t`, [1, 0]);
    node(graph, 'MatMul', [x, `${lin}.lora_A_t`], [`${lin}.lora_u`], `${lin}/lora_down`);
    node(graph, 'Transpose', [io.B], [`${lin}.lora_B_t`], `${lin}/lora_B_t`, [1, 0]);
    node(graph, 'MatMul', [`${lin}.lora_u`, `${lin}.lora_B_t`], [`${lin}.lora_v`], `${lin}/lora_up`);
    node(graph, 'Mul', [`${lin}.lora_v`, io.scaling], [`${lin}.lora_delta`], `${lin}/lora_scale`);
    const last = idx === POLICY_LAYERS.length - 1;
    node(graph, 'Add', [`${lin}.base`, `${lin}.lora_delta`], [last ? ONNX_OUTPUT_MEAN : `${lin}.out`], `${lin}/lora_add`);
    if (!last) {
      node(graph, 'Tanh', [`${lin}.out`], [`${lin}.h`], `${lin}/tanh`);
      x = `${lin}.h`;
    }
  });
  node(graph, 'Identity', ['log_std.param'], [ONNX_OUTPUT_LOG_STD], 'log_std/identity');
  graph.string(2, 'tensorguard_reference_policy');
  for (const name of POLICY_LAYERS) {
    const l = weights.layers[name];
    graph.message(5, (t) => initializer(t, `${name}.weight_t`, [l.inFeatures, l.outFeatures], transpose(l.weight, l.outFeatures, l.inFeatures)));
    graph.message(5, (t) => initializer(t, `${name}.bias`, [l.outFeatures], l.bias));
  }
  graph.message(5, (t) => initializer(t, 'log_std.param', [weights.actDim], weights.logStd));
  graph.string(10, 'MLP policy with LoRA adapters as graph inputs (TensorGuard reference task)');
  graph.message(11, (v) => valueInfo(v, ONNX_INPUT_OBS, ['batch', weights.obsDim]));
  for (const name of POLICY_LAYERS) {
    const l = weights.layers[name];
    const io = onnxLoraInputs(name);
    graph.message(11, (v) => valueInfo(v, io.A, [`${name}_r`, l.inFeatures]));
    graph.message(11, (v) => valueInfo(v, io.B, [l.outFeatures, `${name}_r`]));
    graph.message(11, (v) => valueInfo(v, io.scaling, [1]));
  }
  graph.message(12, (v) => valueInfo(v, ONNX_OUTPUT_MEAN, ['batch', weights.actDim]));
  graph.message(12, (v) => valueInfo(v, ONNX_OUTPUT_LOG_STD, [weights.actDim]));

  const model = new ProtoWriter();
  model.varint(1, ONNX_IR_VERSION);
  model.string(2, 'tensorguard');
  model.string(3, options.producerVersion ?? '1');
  model.string(4, 'dev.tensorguard');
  model.varint(5, 1);
  model.string(6, 'TensorGuard reference policy: obs -> tanh -> tanh -> Gaussian action mean, learned log-std; LoRA inputs per layer');
  model.bytes(7, graph.finish());
  model.message(8, (o) => o.string(1, '').varint(2, ONNX_OPSET));
  for (const [key, value] of Object.entries(options.metadata ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
    model.message(14, (e) => e.string(1, key).string(2, value));
  return model.finish();
}
