// GraphQL Code Generator: TypeScript types and typed documents for the example operations
// (examples/operations/*.graphql), checked against the committed SDL. `make codegen` runs it from
// this directory and writes src/generated/ (not committed); CODEGEN_OUTPUT_DIR (relative to this
// directory, or absolute) sends the output elsewhere, as the tests do.
import type { CodegenConfig } from "@graphql-codegen/cli";

const outputDir = process.env.CODEGEN_OUTPUT_DIR ?? "src/generated";
const schemaTypes = `${outputDir}/schema.ts`;

// SPEC §2: Decimal is an exact decimal string ("19.90"), DateTime an ISO 8601 string, ids opaque strings.
const scalars = { ID: "string", Decimal: "string", DateTime: "string" };

const config: CodegenConfig = {
  schema: "../../schema/schema.graphql",
  documents: "../../examples/operations/*.graphql",
  overwrite: true,
  // Fail on a document that does not validate (a field the SDL lacks, a wrong argument type).
  noSilentErrors: true,
  generates: {
    // Every type of the schema (objects, inputs, enums), for code that is not tied to one operation.
    [schemaTypes]: {
      plugins: ["typescript"],
      config: { scalars, strictScalars: true, enumsAsTypes: true, useTypeImports: true },
    },
    // Each operation's result and variables types, and its document typed with both.
    [`${outputDir}/graphql.ts`]: {
      plugins: ["typescript-operations", "typed-document-node"],
      config: {
        scalars,
        // A scalar added to the SDL later must be mapped here, not silently typed `any`.
        strictScalars: true,
        importSchemaTypesFrom: schemaTypes,
        namespacedImportName: "Types",
        useTypeImports: true,
        // Node's ES modules need the extension (tsconfig.json: NodeNext).
        importExtension: ".js",
      },
    },
  },
};

export default config;
