/**
 * The master-password policy for `init` and `passwd`: at least 12 characters, and not guessable
 * according to zxcvbn-ts with its common and English dictionaries (score 3 or more of 4: "safely
 * unguessable", more than 10^8 guesses). The estimator and its dictionaries (~300 ms to load) are
 * imported only here, so unlocking never pays for them.
 *
 * @module
 */

import { HecateError } from "../errors.ts";

/** The least length of a master password, in characters. */
export const MIN_PASSWORD_LENGTH = 12;
/** The least zxcvbn score accepted (0-4). */
export const MIN_PASSWORD_SCORE = 3;

/**
 * Checks a new master password against the policy.
 *
 * @param password The candidate.
 * @param userInputs Words the password should not be built from (e.g. the user name).
 * @throws {HecateError} `usage` naming the rule broken (never the password).
 */
export async function checkPasswordPolicy(
  password: string,
  userInputs: string[] = [],
): Promise<void> {
  if ([...password].length < MIN_PASSWORD_LENGTH) {
    throw new HecateError(
      "usage",
      `The master password must be at least ${MIN_PASSWORD_LENGTH} characters long`,
    );
  }
  const [{ ZxcvbnFactory }, common, en] = await Promise.all([
    import("@zxcvbn-ts/core"),
    import("@zxcvbn-ts/language-common"),
    import("@zxcvbn-ts/language-en"),
  ]);
  const zxcvbn = new ZxcvbnFactory({
    dictionary: { ...common.dictionary, ...en.dictionary, userInputs },
    graphs: common.adjacencyGraphs,
    translations: en.translations,
  });
  const result = await zxcvbn.check(password);
  if (result.score < MIN_PASSWORD_SCORE) {
    const why = result.feedback.warning ? `: ${result.feedback.warning}` : "";
    throw new HecateError("usage", `The master password is too easy to guess${why}`, {
      hint: "use a longer passphrase of several unrelated words",
    });
  }
}
