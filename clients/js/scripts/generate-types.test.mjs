import { readFileSync } from "node:fs";

import { describe, expect, it } from "vitest";

import { generate, generateFromFile, OUTPUT_PATH } from "./generate-types.mjs";

describe("the generated event types", () => {
  it("are what schema/chat-events.schema.json gives (run `npm run generate` after changing it)", () => {
    expect(readFileSync(OUTPUT_PATH, "utf8")).toBe(generateFromFile());
  });

  it("refuse a keyword they would not express", () => {
    const schema = {
      properties: {
        serverToClient: { type: "object", additionalProperties: false, properties: {} },
        clientToServer: { type: "object", additionalProperties: false, properties: {} },
        acks: { type: "object", additionalProperties: false, properties: {} },
      },
      $defs: { Odd: { type: "object", patternProperties: { "^x": { type: "string" } } } },
    };
    expect(() => generate(schema)).toThrow(/patternProperties/);
  });
});
