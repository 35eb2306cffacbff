/**
 * A small validator for the subset of OpenAPI v3 the CRD uses, so the examples can be checked
 * against the generated schema the way the API server would (CEL rules aside: those run in zod).
 */
export type Schema = Record<string, unknown>;

const ALLOWED_KEYS = new Set([
  'description',
  'type',
  'default',
  'properties',
  'required',
  'items',
  'additionalProperties',
  'enum',
  'minimum',
  'maximum',
  'minLength',
  'maxLength',
  'pattern',
  'minItems',
  'maxItems',
  'maxProperties',
  'anyOf',
  'format',
  'x-kubernetes-int-or-string',
  'x-kubernetes-preserve-unknown-fields',
  'x-kubernetes-validations',
  'x-kubernetes-list-type',
  'x-kubernetes-list-map-keys',
]);

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Problems that would make the API server reject the schema as non-structural. */
export function structuralProblems(node: Schema, path = ''): string[] {
  const out: string[] = [];
  for (const key of Object.keys(node)) {
    if (!ALLOWED_KEYS.has(key)) out.push(`${path}: key ${key} is not allowed`);
  }
  const intOrString = node['x-kubernetes-int-or-string'] === true;
  if (intOrString) {
    const anyOf = JSON.stringify(node.anyOf);
    if (anyOf !== JSON.stringify([{ type: 'integer' }, { type: 'string' }])) {
      out.push(`${path}: int-or-string must use anyOf [integer, string]`);
    }
  } else if (node.anyOf !== undefined) {
    out.push(`${path}: anyOf is only allowed for int-or-string`);
  }
  if (
    node.type === undefined &&
    !intOrString &&
    node['x-kubernetes-preserve-unknown-fields'] !== true
  ) {
    out.push(`${path}: has no type`);
  }
  // apiextensions v1 has one type per schema; a list (what JSON Schema allows) fails to install.
  if (node.type !== undefined && typeof node.type !== 'string') {
    out.push(`${path}: type must be one string`);
  }
  if (node.properties !== undefined && node.additionalProperties !== undefined) {
    out.push(`${path}: properties and additionalProperties together`);
  }
  if (node.additionalProperties === false || node.additionalProperties === true) {
    out.push(`${path}: additionalProperties must be a schema`);
  }
  if (isPlainObject(node.properties)) {
    for (const [k, v] of Object.entries(node.properties)) {
      out.push(...structuralProblems(v as Schema, `${path}.${k}`));
    }
  }
  if (isPlainObject(node.items)) out.push(...structuralProblems(node.items, `${path}[]`));
  if (isPlainObject(node.additionalProperties)) {
    out.push(...structuralProblems(node.additionalProperties, `${path}{}`));
  }
  if (node.default !== undefined) {
    for (const p of validate(node.default, node, `${path}(default)`)) out.push(p);
  }
  return out;
}

/** Problems of a value against a schema node; unknown fields count as problems (no pruning). */
export function validate(value: unknown, node: Schema, path: string): string[] {
  const out: string[] = [];
  // The API server validates ObjectMeta itself; the CRD may only say it is an object.
  if (path === '.metadata') return isPlainObject(value) ? [] : [`${path}: must be an object`];
  if (node['x-kubernetes-int-or-string'] === true) {
    if (typeof value === 'string') {
      if (typeof node.pattern === 'string' && !new RegExp(node.pattern).test(value)) {
        out.push(`${path}: does not match ${node.pattern}`);
      }
    } else if (!Number.isInteger(value)) out.push(`${path}: must be an integer or a string`);
    return out;
  }
  if (Array.isArray(node.enum) && !node.enum.includes(value)) {
    out.push(`${path}: not one of the enum values`);
  }
  switch (node.type) {
    case 'object': {
      if (!isPlainObject(value)) return [...out, `${path}: must be an object`];
      const props = (node.properties ?? {}) as Record<string, Schema>;
      for (const req of (node.required ?? []) as string[]) {
        if (!(req in value)) out.push(`${path}.${req}: is required`);
      }
      for (const [k, v] of Object.entries(value)) {
        const child = props[k];
        if (child) out.push(...validate(v, child, `${path}.${k}`));
        else if (isPlainObject(node.additionalProperties)) {
          out.push(...validate(v, node.additionalProperties, `${path}.${k}`));
        } else if (node['x-kubernetes-preserve-unknown-fields'] !== true) {
          out.push(`${path}.${k}: unknown field`);
        }
      }
      break;
    }
    case 'array': {
      if (!Array.isArray(value)) return [...out, `${path}: must be an array`];
      if (typeof node.minItems === 'number' && value.length < node.minItems) {
        out.push(`${path}: too few items`);
      }
      if (typeof node.maxItems === 'number' && value.length > node.maxItems) {
        out.push(`${path}: too many items`);
      }
      if (node['x-kubernetes-list-type'] === 'set' && new Set(value).size !== value.length) {
        out.push(`${path}: duplicate items`);
      }
      value.forEach((v, i) =>
        out.push(...validate(v, (node.items ?? {}) as Schema, `${path}[${i}]`)),
      );
      break;
    }
    case 'string':
      if (typeof value !== 'string') return [...out, `${path}: must be a string`];
      if (typeof node.minLength === 'number' && value.length < node.minLength) {
        out.push(`${path}: too short`);
      }
      if (typeof node.pattern === 'string' && !new RegExp(node.pattern).test(value)) {
        out.push(`${path}: does not match ${node.pattern}`);
      }
      break;
    case 'integer':
    case 'number':
      if (typeof value !== 'number' || (node.type === 'integer' && !Number.isInteger(value))) {
        return [...out, `${path}: must be ${node.type}`];
      }
      if (typeof node.minimum === 'number' && value < node.minimum) out.push(`${path}: too small`);
      if (typeof node.maximum === 'number' && value > node.maximum) out.push(`${path}: too big`);
      break;
    case 'boolean':
      if (typeof value !== 'boolean') out.push(`${path}: must be a boolean`);
      break;
    default:
      break;
  }
  return out;
}
