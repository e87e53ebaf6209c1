import * as effectEslint from "@effect/eslint-plugin"
import js from "@eslint/js"
import tseslint from "typescript-eslint"

export default tseslint.config(
  {
    ignores: [
      "**/node_modules",
      "**/build",
      "**/dist",
      "**/coverage",
      "**/.tsbuildinfo",
      "**/*.md",
      "scratchpad/**",
      "docs/**",
      "packages/*/docs/**"
    ]
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  ...effectEslint.configs.dprint,
  {
    languageOptions: {
      ecmaVersion: 2022,
      sourceType: "module"
    },
    rules: {
      "no-fallthrough": "off",
      "object-shorthand": "error",
      "require-yield": "off",
      "prefer-rest-params": "off",
      "prefer-spread": "off",
      "@typescript-eslint/array-type": ["warn", { default: "generic", readonly: "generic" }],
      "@typescript-eslint/no-explicit-any": "off",
      "@typescript-eslint/no-empty-object-type": "off",
      "@typescript-eslint/no-unsafe-function-type": "off",
      "@typescript-eslint/no-namespace": "off",
      "@typescript-eslint/consistent-type-imports": "error",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "@effect/dprint": [
        "error",
        {
          config: {
            indentWidth: 2,
            lineWidth: 120,
            semiColons: "asi",
            quoteStyle: "alwaysDouble",
            trailingCommas: "never",
            operatorPosition: "maintain",
            "arrowFunction.useParentheses": "force"
          }
        }
      ]
    }
  },
  {
    files: ["packages/*/src/**/*", "packages/*/test/**/*"],
    rules: { "no-console": "error" }
  },
  {
    files: ["packages/*/src/**/*"],
    rules: {
      "@effect/no-import-from-barrel-package": ["error", { packageNames: ["effect", "@effect/platform"] }],
      // modules Effect 4 removed: a value import of one fails to link there, before the version check can run;
      // take them from the package's internal/effect3.ts
      "@typescript-eslint/no-restricted-imports": ["error", {
        paths: [
          "Either",
          "ConfigError",
          "DefaultServices",
          "ExecutionStrategy",
          "FiberId",
          "FiberRef",
          "MetricBoundaries"
        ].map((
          module
        ) => ({
          name: `effect/${module}`,
          allowTypeImports: true,
          message: "Effect 4 has no such module: import it from internal/effect3.ts (see its comment)"
        }))
      }]
    }
  },
  {
    // plain Node scripts: the release tooling and the pack test's programs
    files: ["scripts/**/*.mjs", ".ci/**/*.mjs", ".ci/**/*.cjs"],
    languageOptions: { globals: { console: "readonly", process: "readonly", URL: "readonly" } }
  },
  {
    files: [".ci/**/*.cjs"],
    languageOptions: { sourceType: "commonjs", globals: { require: "readonly" } },
    rules: { "@typescript-eslint/no-require-imports": "off" }
  }
)
