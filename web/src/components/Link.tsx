// An anchor to an app state: a real href (so middle-click and copy-link work)
// that navigates in place on a plain click.
import type { AnchorHTMLAttributes, MouseEvent } from 'react';
import { encode, navigate, type AppState } from '../state/url';

interface Props extends Omit<AnchorHTMLAttributes<HTMLAnchorElement>, 'href'> {
  to: AppState;
}

export function Link({ to, onClick, ...rest }: Props) {
  const click = (e: MouseEvent<HTMLAnchorElement>) => {
    onClick?.(e);
    if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    e.preventDefault();
    e.stopPropagation();
    navigate(to);
  };
  return <a href={encode(to)} onClick={click} {...rest} />;
}
