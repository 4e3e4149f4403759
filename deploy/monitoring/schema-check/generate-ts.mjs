// Turns Grafana dashboard JSON files into one TypeScript module whose constants are typed with
// Grafana's published schema (@grafana/schema, pinned in package.json), so that `tsc` checks them:
// the dashboard as a whole against `Dashboard`, and each panel's options and custom field config
// against the panel plugin's own types. Object literals get TypeScript's excess-property check, so
// a misspelt or unknown field fails too, not only a wrong type.
//   node generate-ts.mjs OUT.ts DASHBOARD.json...
import { readFileSync, writeFileSync } from 'node:fs';

const PANELCFG = '@grafana/schema/dist/esm/raw/composable';
// Panel types the dashboards may use, with the schema module of each.
const PANEL_TYPES = {
  timeseries: { module: `${PANELCFG}/timeseries/panelcfg/x/TimeSeriesPanelCfg_types.gen`, custom: true },
  stat: { module: `${PANELCFG}/stat/panelcfg/x/StatPanelCfg_types.gen`, custom: false },
  table: { module: `${PANELCFG}/table/panelcfg/x/TablePanelCfg_types.gen`, custom: true },
};

const [out, ...inputs] = process.argv.slice(2);
if (!out || inputs.length === 0) {
  console.error('usage: node generate-ts.mjs OUT.ts DASHBOARD.json...');
  process.exit(2);
}

const lines = [
  "import type { Dashboard, DataQuery } from '@grafana/schema';",
  ...Object.entries(PANEL_TYPES).map(
    ([t, { module, custom }]) =>
      `import type { Options as ${t}Options${custom ? `, FieldConfig as ${t}FieldConfig` : ''} } from '${module}';`,
  ),
  // Grafana's types use TypeScript enums (ThresholdsMode, GraphDrawStyle, ...) where the JSON holds
  // their string values, which TypeScript does not accept for an enum. AsJson<T> replaces each
  // string enum with the union of its values (`${E}`), so a value outside the enum still fails;
  // numeric enums accept only their members' numbers as they are.
  'type AsJson<T> = T extends string ? `${T}` : T extends ReadonlyArray<infer U> ? Array<AsJson<U>> : ' +
    'T extends object ? { [K in keyof T]: AsJson<T[K]> } : T;',
  // Grafana's schema leaves a query's fields to the data source plugin and the Prometheus plugin's
  // schema is not published in this package: these are the fields our panels use.
  'interface PrometheusQuery extends DataQuery {',
  '  expr: string;',
  '  legendFormat?: string;',
  '  instant?: boolean;',
  '  range?: boolean;',
  "  format?: 'time_series' | 'table' | 'heatmap';",
  '}',
];
let failed = false;
inputs.forEach((path, d) => {
  const dash = JSON.parse(readFileSync(path, 'utf8'));
  lines.push(`// ${path}`);
  lines.push(`export const dashboard${d}: AsJson<Dashboard> = ${JSON.stringify(dash, null, 2)};`);
  const panels = (dash.panels ?? []).flatMap((p) => [p, ...(p.type === 'row' ? p.panels ?? [] : [])]);
  for (const p of panels) {
    if (p.type === 'row') continue;
    const kind = PANEL_TYPES[p.type];
    if (!kind) {
      console.error(`${path}: panel ${p.id} "${p.title}" has type ${p.type}, which this check does not know`);
      failed = true;
      continue;
    }
    const name = `d${d}_panel${p.id}`;
    lines.push(`export const ${name}_options: AsJson<${p.type}Options> = ${JSON.stringify(p.options ?? {}, null, 2)};`);
    if (kind.custom) {
      const custom = p.fieldConfig?.defaults?.custom ?? {};
      lines.push(`export const ${name}_custom: AsJson<${p.type}FieldConfig> = ${JSON.stringify(custom, null, 2)};`);
    }
    lines.push(`export const ${name}_targets: PrometheusQuery[] = ${JSON.stringify(p.targets ?? [], null, 2)};`);
    if (!p.targets?.length) {
      console.error(`${path}: panel ${p.id} "${p.title}" has no query`);
      failed = true;
    }
  }
});
writeFileSync(out, lines.join('\n') + '\n');
process.exit(failed ? 1 : 0);
