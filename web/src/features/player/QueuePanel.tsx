import { useState } from 'react';
import { t } from '../../i18n';
import { Icon } from '../../lib/Icon';
import { player, usePlayer } from './store';

// The queue: reorder with the buttons, with drag and drop, or with Alt+Up/Down on a focused row.
export function QueuePanel() {
  const items = usePlayer((s) => s.queue.items);
  const index = usePlayer((s) => s.queue.index);
  const [dragFrom, setDragFrom] = useState<number | null>(null);

  return (
    <div id="queue-panel" className="queue-panel" role="region" aria-label={t.player.queue}>
      <div className="queue-head">
        <h2>{t.player.queue}</h2>
        <button type="button" onClick={player.clear} disabled={items.length === 0}>{t.player.clear}</button>
      </div>
      {items.length === 0 ? (
        <p className="muted">{t.player.emptyQueue}</p>
      ) : (
        <ol className="queue-list" data-testid="queue">
          {items.map((song, i) => (
            <li
              key={`${song.file_id}-${i}`}
              className={i === index ? 'current' : ''}
              aria-current={i === index ? 'true' : undefined}
              draggable
              onDragStart={(e) => {
                setDragFrom(i);
                e.dataTransfer.effectAllowed = 'move';
                e.dataTransfer.setData('application/x-dispotify-queue', String(i));
              }}
              onDragOver={(e) => {
                if (dragFrom !== null) e.preventDefault();
              }}
              onDrop={(e) => {
                e.preventDefault();
                e.stopPropagation();
                if (dragFrom !== null) player.move(dragFrom, i);
                setDragFrom(null);
              }}
              onKeyDown={(e) => {
                if (e.altKey && e.key === 'ArrowUp') player.move(i, i - 1);
                else if (e.altKey && e.key === 'ArrowDown') player.move(i, i + 1);
              }}
            >
              <button type="button" className="link queue-song" onClick={() => player.jumpTo(i)}>
                <span>{song.title || song.file_name}</span>
                <span className="muted small">{song.artist}</span>
              </button>
              <span className="queue-actions">
                <button type="button" className="icon small" aria-label={`${t.player.moveUp}: ${song.title}`} onClick={() => player.move(i, i - 1)} disabled={i === 0}><Icon name="up" size={16} /></button>
                <button type="button" className="icon small" aria-label={`${t.player.moveDown}: ${song.title}`} onClick={() => player.move(i, i + 1)} disabled={i === items.length - 1}><Icon name="down" size={16} /></button>
                <button type="button" className="icon small" aria-label={`${t.player.remove}: ${song.title}`} onClick={() => player.remove(i)}><Icon name="close" size={16} /></button>
              </span>
            </li>
          ))}
        </ol>
      )}
    </div>
  );
}
