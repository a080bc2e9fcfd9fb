/** Waiting for an event the test cannot subscribe to: poll a condition, bounded in time. */

/** Resolves once `pred` holds; rejects with `what` after `ms`. */
export async function eventually(pred: () => boolean | Promise<boolean>, what: string, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await pred())) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
