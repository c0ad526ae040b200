/** The CloudFormation template, as shipped in cloudformation/ (compiled into dist/ next to this module). */
import template from '../../cloudformation/ecs-secrets.json';

export const TEMPLATE: Readonly<Record<string, unknown>> = template;
