#!/usr/bin/env node
/**
 * Generates packages/client/src/events.generated.ts from schema/chat-events.schema.json.
 *
 *   node scripts/generate-types.mjs           write the file
 *   node scripts/generate-types.mjs --check   exit 1 if the file is not what the schema gives
 *
 * It understands the part of JSON Schema the event schema uses -- $ref to
 * #/$defs, type (or a list of types), enum, const, properties / required /
 * additionalProperties, items, oneOf / anyOf / allOf -- and refuses any
 * other keyword that would change a type, so the schema cannot silently
 * say more than the types do.  Validation-only keywords (pattern, minimum...)
 * and descriptions (which become doc comments) are fine.
 *
 * Each $defs entry becomes an exported type of the same name; the three
 * sections of the catalogue become ServerToClientPayloads,
 * ClientToServerPayloads and AckBodies (event name -> payload type).
 */

import { readFileSync, writeFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
export const SCHEMA_PATH = resolve(here, "../../../schema/chat-events.schema.json");
export const OUTPUT_PATH = resolve(here, "../packages/client/src/events.generated.ts");

/** Catalogue sections and the interface each becomes. */
const SECTIONS = {
  serverToClient: "ServerToClientPayloads",
  clientToServer: "ClientToServerPayloads",
  acks: "AckBodies",
};
/** Keywords that only validate or document: they do not change a TypeScript type. */
const IGNORED = new Set([
  "$schema", "$id", "$comment", "title", "description", "examples", "default", "deprecated",
  "pattern", "format", "minLength", "maxLength", "minimum", "maximum", "exclusiveMinimum",
  "exclusiveMaximum", "multipleOf", "minItems", "maxItems", "uniqueItems", "minProperties", "maxProperties",
]);
const UNDERSTOOD = new Set([
  "$ref", "type", "enum", "const", "properties", "required", "additionalProperties", "items",
  "oneOf", "anyOf", "allOf", "$defs",
]);
const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

function fail(path, message) {
  throw new Error(`${path}: ${message}`);
}

function checkKeywords(schema, path) {
  for (const key of Object.keys(schema)) {
    if (!IGNORED.has(key) && !UNDERSTOOD.has(key)) {
      fail(path, `keyword "${key}" is not supported by the type generator (scripts/generate-types.mjs)`);
    }
  }
}

function docComment(text, indent) {
  if (!text) return "";
  const lines = String(text).replaceAll("*/", "*\\/").split("\n");
  if (lines.length === 1) return `${indent}/** ${lines[0]} */\n`;
  return `${indent}/**\n${lines.map((line) => `${indent} * ${line}`.trimEnd()).join("\n")}\n${indent} */\n`;
}

function propertyName(name) {
  return IDENTIFIER.test(name) ? name : JSON.stringify(name);
}

function literal(value) {
  return JSON.stringify(value);
}

function union(parts) {
  const unique = [...new Set(parts)];
  return unique.length === 1 ? unique[0] : unique.map((part) => (part.includes("=>") ? `(${part})` : part)).join(" | ");
}

/** The TypeScript type of `schema`; `indent` is the indentation of the line it starts on. */
function typeOf(schema, path, indent, defs) {
  if (schema === true || schema === undefined) return "unknown";
  if (schema === false) return "never";
  checkKeywords(schema, path);
  if (schema.$ref !== undefined) {
    const match = /^#\/\$defs\/([A-Za-z_][A-Za-z0-9_]*)$/.exec(schema.$ref);
    if (!match) fail(path, `$ref must point into #/$defs, got ${schema.$ref}`);
    if (!(match[1] in defs)) fail(path, `$ref to a missing definition ${schema.$ref}`);
    const others = Object.keys(schema).filter((key) => key !== "$ref" && !IGNORED.has(key));
    if (others.length) fail(path, `$ref with ${others.join(", ")} beside it is not supported`);
    return match[1];
  }
  if (schema.const !== undefined) return literal(schema.const);
  if (schema.enum !== undefined) return union(schema.enum.map(literal));
  for (const combinator of ["oneOf", "anyOf"]) {
    if (schema[combinator] !== undefined) {
      return union(schema[combinator].map((part, i) => typeOf(part, `${path}/${combinator}/${i}`, indent, defs)));
    }
  }
  if (schema.allOf !== undefined) {
    return schema.allOf.map((part, i) => typeOf(part, `${path}/allOf/${i}`, indent, defs)).join(" & ");
  }
  if (schema.type === undefined) return "unknown";
  const types = Array.isArray(schema.type) ? schema.type : [schema.type];
  return union(types.map((type) => typeOfType(type, schema, path, indent, defs)));
}

function typeOfType(type, schema, path, indent, defs) {
  switch (type) {
    case "string":
      return "string";
    case "integer":
    case "number":
      return "number";
    case "boolean":
      return "boolean";
    case "null":
      return "null";
    case "array": {
      const item = typeOf(schema.items, `${path}/items`, indent, defs);
      return /^[A-Za-z0-9_]+$/.test(item) ? `${item}[]` : `Array<${item}>`;
    }
    case "object":
      return objectType(schema, path, indent, defs);
    default:
      return fail(path, `unknown type "${type}"`);
  }
}

function objectType(schema, path, indent, defs) {
  const properties = schema.properties ?? {};
  const required = new Set(schema.required ?? []);
  for (const name of required) if (!(name in properties)) fail(path, `required "${name}" is not among the properties`);
  const inner = `${indent}  `;
  let body = "";
  for (const [name, property] of Object.entries(properties)) {
    body += docComment(property.description, inner);
    const optional = required.has(name) ? "" : "?";
    body += `${inner}${propertyName(name)}${optional}: ${typeOf(property, `${path}/properties/${name}`, inner, defs)};\n`;
  }
  const extra = schema.additionalProperties;
  if (extra !== undefined && extra !== false && extra !== true) {
    body += `${inner}[key: string]: ${typeOf(extra, `${path}/additionalProperties`, inner, defs)};\n`;
  } else if (!Object.keys(properties).length) {
    return extra === false ? "Record<string, never>" : "Record<string, unknown>";
  }
  return `{\n${body}${indent}}`;
}

/** The whole generated module for a parsed schema. */
export function generate(schema) {
  const defs = schema.$defs ?? {};
  let out =
    "// Generated from schema/chat-events.schema.json by scripts/generate-types.mjs: do not edit.\n" +
    "// Change the schema, then run `npm run generate` in clients/js (schema/README.md).\n\n";
  for (const [name, def] of Object.entries(defs)) {
    if (!IDENTIFIER.test(name)) fail(`#/$defs/${name}`, "a definition's name must be a TypeScript identifier");
    out += docComment(def.description, "");
    const type = typeOf(def, `#/$defs/${name}`, "", defs);
    out += type.startsWith("{\n") ? `export interface ${name} ${type}\n\n` : `export type ${name} = ${type};\n\n`;
  }
  const sections = schema.properties ?? {};
  for (const key of Object.keys(sections)) if (!(key in SECTIONS)) fail(`#/properties/${key}`, "unknown catalogue section");
  for (const [key, name] of Object.entries(SECTIONS)) {
    const section = sections[key];
    if (!section) fail(`#/properties/${key}`, "missing catalogue section");
    if (section.additionalProperties !== false) fail(`#/properties/${key}`, "a section must set additionalProperties: false");
    out += docComment(section.description, "");
    out += `export interface ${name} {\n`;
    for (const [event, payload] of Object.entries(section.properties ?? {})) {
      out += docComment(payload.description, "  ");
      out += `  ${JSON.stringify(event)}: ${typeOf(payload, `#/properties/${key}/properties/${event}`, "  ", defs)};\n`;
    }
    out += "}\n\n";
  }
  return out.replace(/\n+$/, "\n");
}

export function generateFromFile(path = SCHEMA_PATH) {
  return generate(JSON.parse(readFileSync(path, "utf8")));
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const generated = generateFromFile();
  if (process.argv.includes("--check")) {
    let current = "";
    try {
      current = readFileSync(OUTPUT_PATH, "utf8");
    } catch {
      // missing: not up to date
    }
    if (current !== generated) {
      console.error(`${OUTPUT_PATH} is out of date: run \`npm run generate\` in clients/js`);
      process.exit(1);
    }
  } else {
    writeFileSync(OUTPUT_PATH, generated);
    console.log(`wrote ${OUTPUT_PATH}`);
  }
}
