// Global keys: space plays/pauses, ←/→ seek 5 s, Shift+←/→ previous/next, m mutes, / goes to search.
// Keys typed into a field or on a control that uses them itself are left alone.
import { player } from './store';

export const SEEK_STEP_S = 5;

function ownsKeys(target: EventTarget | null): boolean {
  if (!(target instanceof HTMLElement)) return false;
  if (target.isContentEditable) return true;
  const tag = target.tagName;
  return tag === 'INPUT' || tag === 'TEXTAREA' || tag === 'SELECT' || tag === 'BUTTON' || tag === 'A' || target.getAttribute('role') === 'option';
}

export function handleShortcut(e: KeyboardEvent, focusSearch: () => void): boolean {
  if (e.ctrlKey || e.metaKey || e.altKey || e.defaultPrevented) return false;
  if (e.key === '/' && !ownsKeys(e.target)) {
    focusSearch();
    return true;
  }
  if (ownsKeys(e.target)) return false;
  switch (e.key) {
    case ' ':
      player.toggle();
      return true;
    case 'ArrowRight':
      if (e.shiftKey) player.next();
      else player.seekBy(SEEK_STEP_S);
      return true;
    case 'ArrowLeft':
      if (e.shiftKey) player.previous();
      else player.seekBy(-SEEK_STEP_S);
      return true;
    case 'm':
      player.toggleMute();
      return true;
    default:
      return false;
  }
}
