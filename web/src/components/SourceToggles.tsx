// The data sources shown: commands, network, files, Kubernetes requests and
// policy events. At least one stays on.
import { SOURCES, type Source } from '../filter/query';

interface Props {
  enabled: Source[];
  onChange: (enabled: Source[]) => void;
}

export function SourceToggles({ enabled, onChange }: Props) {
  const toggle = (id: Source) => {
    const next = enabled.includes(id) ? enabled.filter((s) => s !== id) : [...enabled, id];
    if (next.length) onChange(SOURCES.map((s) => s.id).filter((s) => next.includes(s)));
  };
  return (
    <fieldset className="sources">
      <legend className="visually-hidden">Data sources</legend>
      {SOURCES.map((s) => (
        <label key={s.id} className={`chip cat-border-${s.id}`}>
          <input type="checkbox" checked={enabled.includes(s.id)} onChange={() => toggle(s.id)}
            disabled={enabled.length === 1 && enabled.includes(s.id)} />
          <span className={`swatch cat-${s.id}`} />
          {s.label}
        </label>
      ))}
    </fieldset>
  );
}
