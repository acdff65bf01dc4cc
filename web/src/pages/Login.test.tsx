import { fireEvent, render, screen, waitFor } from '@testing-library/react';
import { describe, expect, it, vi } from 'vitest';
import { fakeApi } from '../test/api';
import { Login } from './Login';

describe('Login', () => {
  it('says clearly when the token is wrong, and signs in with a good one', async () => {
    const api = fakeApi({
      '/stats': () => [401, { error: { code: 'unauthorized', message: 'a valid bearer token is required' } }],
    });
    const onLogin = vi.fn();
    render(<Login onLogin={onLogin} />);
    fireEvent.change(screen.getByLabelText('API token'), { target: { value: 'wrong' } });
    fireEvent.click(screen.getByTestId('login-submit'));
    expect((await screen.findByRole('alert')).textContent).toMatch(/refused this token/);
    expect(onLogin).not.toHaveBeenCalled();
    expect(api.requests[0].pathname).toBe('/api/v1/stats');

    fakeApi({ '/stats': () => ({ events: { process: 1 }, bytes: 10, newest: '2026-11-27T10:00:00Z' }) });
    fireEvent.change(screen.getByTestId('login-token'), { target: { value: 'good' } });
    fireEvent.click(screen.getByTestId('login-submit'));
    await waitFor(() => expect(onLogin).toHaveBeenCalledWith('good', expect.objectContaining({ bytes: 10 })));
  });
});
