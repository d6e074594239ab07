import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["node_modules/", "**/node_modules/", ".data/", "demo-data/", "test-artifacts/", ".tmp/", "packages/*/dist/", "build/"] },
  ...tseslint.configs.recommended,
  {
    // packages/web/src is plain JavaScript that browsers load as it is (docs/web.md): the same rules.
    files: ["**/*.ts", "packages/web/src/**/*.js"],
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "@typescript-eslint/consistent-type-imports": "error",
      "no-console": "off",
    },
  },
);
