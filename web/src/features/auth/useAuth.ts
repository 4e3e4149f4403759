import { useSyncExternalStore } from 'react';
import { can, getAuth, subscribeAuth, type Action, type AuthState } from '../../lib/auth';

export function useAuth(): AuthState {
  return useSyncExternalStore(subscribeAuth, getAuth);
}

// Whether the signed-in user's roles allow `action` (always with security off).
export function useCan(action: Action): boolean {
  return can(useAuth(), action);
}
