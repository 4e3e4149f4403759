// Search as you type: the text is debounced, and each new query supersedes the last — TanStack
// Query aborts the superseded request through its AbortSignal once nothing observes it.
import { keepPreviousData, useQuery } from '@tanstack/react-query';
import { useEffect, useState } from 'react';
import { api } from '../../lib/api';
import { keys } from '../library/queries';

export const DEBOUNCE_MS = 150;
export const SEARCH_LIMIT = 30;

export function useDebounced<T>(value: T, ms: number): T {
  const [v, setV] = useState(value);
  useEffect(() => {
    const id = setTimeout(() => setV(value), ms);
    return () => clearTimeout(id);
  }, [value, ms]);
  return v;
}

export function normalizeQuery(text: string): string {
  return text.trim().replace(/\s+/g, ' ').slice(0, 256);
}

export function useSearch(text: string) {
  const q = normalizeQuery(useDebounced(text, DEBOUNCE_MS));
  const query = useQuery({
    queryKey: keys.search(q),
    queryFn: ({ signal }) => api.search(q, SEARCH_LIMIT, signal),
    enabled: q.length > 0,
    placeholderData: keepPreviousData,
    staleTime: 10_000,
  });
  return { q, ...query };
}
