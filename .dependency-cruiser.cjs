// Dependency rules (README "Layout"): front doors → use cases → adapters, one way. `npm run lint:deps`.
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: "no-circular",
      severity: "error",
      comment: "An import cycle means two modules are one concern, or a rule lives on the wrong side.",
      from: {},
      to: { circular: true },
    },
    {
      name: "model-is-a-leaf",
      severity: "error",
      comment: "src/model/ (states, transitions, domain errors) is what every layer may import; it imports no layer.",
      from: { path: "^src/model/" },
      to: { path: "^src/", pathNot: "^src/model/" },
    },
    {
      name: "adapters-do-not-import-use-cases",
      severity: "error",
      comment:
        "store/, queue/, engagelab/ and webhooks/ implement ports for the use cases; they never call back into them.",
      from: { path: "^src/(store|queue|engagelab|webhooks)/" },
      to: { path: "^src/(campaigns|recipients|access|runtime|cli|http)/" },
    },
    {
      name: "use-cases-use-no-adapter-libraries",
      severity: "error",
      comment: "Use cases write no SQL and speak no BullMQ or HTTP: that belongs in store/, queue/ or engagelab/.",
      from: { path: "^src/(campaigns|recipients|access)/" },
      to: { path: "node_modules/(pg|pg-copy-streams|@prisma/[^/]+|bullmq|ioredis|undici)/" },
    },
    {
      name: "use-cases-do-not-import-process-wiring",
      severity: "error",
      comment: "runtime/ wires processes from the layers below it; nothing below imports it.",
      from: { path: "^src/(model|campaigns|recipients|access|store|queue|engagelab|webhooks|config)/" },
      to: { path: "^src/(runtime|cli|http)/" },
    },
    {
      name: "front-doors-call-use-cases",
      severity: "error",
      comment: "The CLI and the HTTP API import use cases, the model, config and runtime/, never an adapter.",
      from: { path: "^src/(cli|http)/" },
      to: { path: "^src/(store|queue|engagelab|webhooks)/" },
    },
    {
      name: "no-sandbox-in-product",
      severity: "error",
      comment: "The sandbox is the provider's look-alike; only the `smsblast sandbox` command and tests start it.",
      from: { path: "^(src|workers)/", pathNot: ["^src/sandbox/", "^src/cli/commands/service-commands\\.ts$"] },
      to: { path: "^src/sandbox/" },
    },
    {
      name: "sandbox-imports-nothing-of-the-product",
      severity: "error",
      comment: "The sandbox must behave like EngageLab, not like our own adapters.",
      from: { path: "^src/sandbox/" },
      to: { path: "^src/", pathNot: "^src/sandbox/" },
    },
    {
      name: "product-does-not-import-scripts-or-tests",
      severity: "error",
      from: { path: "^(src|workers)/" },
      to: { path: "^(scripts|test)/" },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    exclude: { path: "^src/store/generated/" },
    tsConfig: { fileName: "tsconfig.json" },
    tsPreCompilationDeps: true,
    enhancedResolveOptions: { exportsFields: ["exports"], conditionNames: ["import", "require", "node", "default"] },
    reporterOptions: { text: { highlightFocused: true } },
  },
};
