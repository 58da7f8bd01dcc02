# One image, several roles: the command picks worker, sandbox, migrate or a CLI command.
FROM node:20.20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
# Dev dependencies are needed once, for `prisma generate`; they are pruned afterwards.
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run generate && npm prune --omit=dev
USER node
ENTRYPOINT ["node", "bin/smsblast.js"]
CMD ["worker"]
