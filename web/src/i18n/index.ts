import { en, type Messages } from './en';
import { es } from './es';

// The language is picked once from the browser's preference.
export function pickMessages(languages: readonly string[]): { lang: string; t: Messages } {
  for (const l of languages) {
    const base = l.toLowerCase().split('-')[0];
    if (base === 'es') return { lang: 'es', t: es };
    if (base === 'en') return { lang: 'en', t: en };
  }
  return { lang: 'en', t: en };
}

const nav = typeof navigator !== 'undefined' ? navigator : undefined;
const picked = pickMessages(nav?.languages?.length ? nav.languages : [nav?.language ?? 'en']);

export const t: Messages = picked.t;
export const lang = picked.lang;
export type { Messages };
