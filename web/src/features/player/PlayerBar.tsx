import { useEffect, useRef, useState } from 'react';
import { t } from '../../i18n';
import { formatDuration } from '../../lib/format';
import { Icon } from '../../lib/Icon';
import { current } from './queue';
import { attachAudio, player, usePlayer } from './store';
import { QueuePanel } from './QueuePanel';
import { Cover } from '../library/Cover';
import { albumKey } from '../library/derive';
import { SongDetails } from '../library/SongDetails';

export function PlayerBar() {
  const audioRef = useRef<HTMLAudioElement>(null);
  const spareRef = useRef<HTMLAudioElement>(null);
  useEffect(() => (audioRef.current ? attachAudio(audioRef.current, spareRef.current ?? undefined) : undefined), []);
  const active = usePlayer((s) => s.active);
  const resumes = usePlayer((s) => s.resumes);
  const song = usePlayer((s) => current(s.queue));
  const playing = usePlayer((s) => s.playing);
  const position = usePlayer((s) => s.position);
  const duration = usePlayer((s) => s.duration);
  const volume = usePlayer((s) => s.volume);
  const muted = usePlayer((s) => s.muted);
  const shuffle = usePlayer((s) => s.queue.shuffle);
  const repeat = usePlayer((s) => s.queue.repeat);
  const reconnecting = usePlayer((s) => s.reconnecting);
  const failed = usePlayer((s) => s.failed);
  const queueOpen = usePlayer((s) => s.queueOpen);
  const [details, setDetails] = useState(false);
  const repeatLabel = repeat === 'off' ? t.player.repeatOff : repeat === 'all' ? t.player.repeatAll : t.player.repeatOne;

  return (
    <section className="player" aria-label={t.player.bar} data-testid="player-bar" data-resumes={resumes}>
      {/* The one playing is "audio"; the other preloads the next song (gapless.ts). */}
      <audio ref={audioRef} data-testid={active === 0 ? 'audio' : 'audio-next'} />
      <audio ref={spareRef} data-testid={active === 1 ? 'audio' : 'audio-next'} />
      <div className="player-now" aria-live="polite">
        {song ? (
          <>
            <Cover albumKey={albumKey(song)} title={song.album} cover={song.cover} size="sm" />
            <div className="player-text">
              <button type="button" className="link player-title" data-testid="now-title" aria-expanded={details} aria-controls="song-details" title={t.song.details} onClick={() => setDetails(!details)}>
                {song.title || song.file_name}
              </button>
              <div className="player-artist muted">{song.artist || t.common.unknownArtist}</div>
              {reconnecting && <div className="muted small">{t.player.reconnecting}</div>}
              {failed && <div className="error small" role="alert">{t.common.error}</div>}
            </div>
          </>
        ) : (
          <div className="muted">{t.player.nothing}</div>
        )}
      </div>
      <div className="player-main">
        <div className="player-buttons">
          <button type="button" className={`icon ${shuffle ? 'on' : ''}`} aria-pressed={shuffle} aria-label={t.player.shuffle} title={t.player.shuffle} onClick={player.toggleShuffle}><Icon name="shuffle" /></button>
          <button type="button" className="icon" aria-label={t.player.previous} title={t.player.previous} onClick={player.previous} disabled={!song}><Icon name="previous" /></button>
          <button type="button" className="icon big" aria-label={playing ? t.player.pause : t.player.play} title={playing ? t.player.pause : t.player.play} onClick={player.toggle} disabled={!song} data-testid="play-pause">
            <Icon name={playing ? 'pause' : 'play'} size={32} />
          </button>
          <button type="button" className="icon" aria-label={t.player.next} title={t.player.next} onClick={player.next} disabled={!song}><Icon name="next" /></button>
          <button type="button" className={`icon ${repeat !== 'off' ? 'on' : ''}`} aria-label={repeatLabel} title={repeatLabel} onClick={player.cycleRepeat} data-testid="repeat">
            <Icon name={repeat === 'one' ? 'repeatOne' : 'repeat'} />
          </button>
        </div>
        <div className="player-seek">
          <span className="time" data-testid="position">{formatDuration(position * 1000)}</span>
          <input
            type="range"
            aria-label={t.player.seek}
            min={0}
            max={Math.max(duration, 0.001)}
            step={0.1}
            value={Math.min(position, duration || position)}
            onChange={(e) => player.seek(Number(e.target.value))}
            disabled={!song}
            aria-valuetext={`${formatDuration(position * 1000)} / ${formatDuration(duration * 1000)}`}
          />
          <span className="time">{formatDuration(duration * 1000)}</span>
        </div>
      </div>
      <div className="player-side">
        <button type="button" className="icon" aria-label={t.player.mute} aria-pressed={muted} title={t.player.mute} onClick={player.toggleMute}>
          <Icon name={muted || volume === 0 ? 'muted' : 'volume'} />
        </button>
        <input type="range" className="volume" aria-label={t.player.volume} min={0} max={1} step={0.01} value={muted ? 0 : volume} onChange={(e) => player.setVolume(Number(e.target.value))} />
        <button type="button" className={`icon ${queueOpen ? 'on' : ''}`} aria-expanded={queueOpen} aria-controls="queue-panel" aria-label={queueOpen ? t.player.hideQueue : t.player.showQueue} title={t.player.queue} onClick={player.toggleQueue}>
          <Icon name="queue" />
        </button>
      </div>
      {queueOpen && <QueuePanel />}
      {details && song && (
        <div id="song-details" className="details-panel" role="region" aria-label={t.song.details}>
          <SongDetails fileId={song.file_id} />
        </div>
      )}
    </section>
  );
}
