/** Label and reference rules, and how selections carry NAME@LABEL (variables stay the name's). */
import { parseSecretRef, validateLabel, validateReadLabel } from '../../src/core/labels';
import { parseSelection, parseSelector, resolveSelection } from '../../src/delivery/selection';
import { parsePrefetchNames } from '../../src/daemon/config';

test('labels: the rule, and latest/previous reserved for setting but readable', () => {
  expect(validateLabel('prod')).toBe('prod');
  expect(validateLabel(`a${'b'.repeat(31)}`)).toHaveLength(32);
  for (const bad of ['', 'Prod', '1prod', `a${'b'.repeat(32)}`, 'pr od', 'pr_od'])
    expect(() => validateLabel(bad)).toThrow(expect.objectContaining({ kind: 'usage' }));
  for (const reserved of ['latest', 'previous']) {
    expect(() => validateLabel(reserved)).toThrow(/reserved/);
    expect(validateReadLabel(reserved)).toBe(reserved);
  }
});

test('references: NAME or NAME@LABEL, each part checked', () => {
  expect(parseSecretRef('shop.db')).toEqual({ name: 'shop.db' });
  expect(parseSecretRef('shop.db@prod')).toEqual({ name: 'shop.db', label: 'prod' });
  expect(parseSecretRef('shop.db@previous')).toEqual({ name: 'shop.db', label: 'previous' });
  for (const bad of ['@prod', 'shop.db@', 'shop.db@Prod', 'a@b@c', 'sh op@prod'])
    expect(() => parseSecretRef(bad)).toThrow(expect.objectContaining({ kind: 'usage' }));
});

test('selections, selectors and --prefetch take references; the variable is derived from the name alone', () => {
  const sel = parseSelection({ name: ['shop.db@prod', 'OLD=shop.db@previous'] });
  expect(resolveSelection(sel)).toEqual([
    { name: 'shop.db@previous', variable: 'OLD' },
    { name: 'shop.db@prod', variable: 'SHOP_DB' },
  ]);
  // The same name pinned twice without VAR= lands on one variable: a usage error naming both.
  expect(() => resolveSelection(parseSelection({ name: ['db@prod', 'db@previous'] }))).toThrow(/both map/);
  expect(parseSelector('db@prod,X=api@canary').names).toEqual([
    { name: 'db@prod' },
    { name: 'api@canary', variable: 'X' },
  ]);
  expect(parsePrefetchNames(['db@prod,api'])).toEqual(['db@prod', 'api']);
  expect(() => parsePrefetchNames(['db@PROD'])).toThrow(/invalid label/);
});
