#!/usr/bin/env node
/**
 * The `ecs-secrets` executable (package.json "bin", the image's ENTRYPOINT). It only loads the CLI
 * itself (ecs-secrets.js, one bundle) through V8's code cache, which makes every command start
 * faster (startup/bundled-module.ts).
 */
import * as path from 'node:path';
import { requireBundled } from './startup/bundled-module';

requireBundled(path.join(__dirname, 'ecs-secrets.js'));
