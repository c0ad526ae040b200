/** A bound on how long one backend call may keep a caller waiting. */
import { AppError } from '../core/errors';

/**
 * `p`, or an "unavailable" error once `ms` have passed without an answer (`what` names the call in
 * the message). The call itself is not cancelled: the SDK keeps retrying it in the background.
 */
export function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new AppError('unavailable', `backend unavailable ${what}: no answer within ${ms} ms`)),
      ms,
    );
  });
  return Promise.race([p, deadline]).finally(() => clearTimeout(timer));
}
