// Validates an OpenAPI 3.1 document for tests/system/test_openapi.py:
//
//     node openapi_validate.mjs DOCUMENT.json PREFIX
//
// with the npm packages that tools/install-deps puts under PREFIX
// (tools/npm/package.json): @seriousme/openapi-schema-validator checks the
// document against the OpenAPI 3.1 schema and checks its $refs; then ajv
// checks each Schema Object of it against JSON Schema 2020-12, compiles
// each `pattern` as ECMA-262 with the u flag, and checks each `default`
// against the schema it sits in (where that schema has no $ref).
// Prints {"valid": true|false, "errors": [...]} and exits 0 when valid.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [file, prefix] = process.argv.slice(2);
const load = async (p) =>
	import(pathToFileURL(join(prefix, "node_modules", p)).href);
const { Validator } = await load("@seriousme/openapi-schema-validator/index.js");
const Ajv2020 = (await load("ajv/dist/2020.js")).default;
const addFormats = (await load("ajv-formats/dist/index.js")).default;

const doc = JSON.parse(readFileSync(file, "utf-8"));
const errors = [];

const result = await new Validator().validate(structuredClone(doc));
if (!result.valid)
	errors.push({ validator: "openapi-schema-validator", errors: result.errors });

// Every Schema Object: components.schemas, and each "schema" member of a
// parameter, header or media type, with where it is.
const schemas = [];
for (const [name, s] of Object.entries(doc.components?.schemas ?? {}))
	schemas.push([`#/components/schemas/${name}`, s]);
(function walk(node, where) {
	if (node === null || typeof node !== "object")
		return;
	for (const [key, value] of Object.entries(node)) {
		if (where === "#/components/schemas")
			continue;
		if (key === "schema" && typeof value === "object")
			schemas.push([`${where}/schema`, value]);
		else
			walk(value, `${where}/${key.replaceAll("~", "~0").replaceAll("/", "~1")}`);
	}
})(doc, "#");

const hasRef = (s) => JSON.stringify(s).includes('"$ref"');
const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats(ajv);
for (const [where, schema] of schemas) {
	if (!ajv.validateSchema(schema))
		errors.push({ where, meta: ajv.errors });
	(function check(s, at) {
		if (s === null || typeof s !== "object")
			return;
		if (typeof s.pattern === "string") {
			try {
				new RegExp(s.pattern, "u");
			} catch (e) {
				errors.push({ where: at, pattern: s.pattern, error: String(e) });
			}
		}
		if ("default" in s && !hasRef(s)) {
			try {
				const valid = ajv.compile(s);
				if (!valid(s.default))
					errors.push({ where: at, default: s.default, errors: valid.errors });
			} catch (e) {
				errors.push({ where: at, compile: String(e) });
			}
		}
		for (const [k, v] of Object.entries(s))
			if (k !== "default" && k !== "enum" && k !== "const" && k !== "examples")
				check(v, `${at}/${k}`);
	})(schema, where);
}

console.log(JSON.stringify({ valid: errors.length === 0, errors }, null, 1));
process.exit(errors.length === 0 ? 0 : 1);
