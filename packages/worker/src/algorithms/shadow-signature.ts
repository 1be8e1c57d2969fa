import { sign, verify, type KeyObject } from 'node:crypto';
import { ArteriaError } from '@arteria/protocol';
import { publicKeyId } from './artifact-signature.js';
import { SHADOW_FORMAT, type ShadowPlan } from './shadow.js';

/** The bytes a plan's signature covers: which version shadows which share, since when. */
function planStatement(plan: ShadowPlan): Buffer {
  return Buffer.from(`${SHADOW_FORMAT}\n${plan.name}@${plan.version}\n${plan.percent}\n${plan.since}\n`, 'utf8');
}

/** The plan signed with `key` (its keyId and signature set), or marked unsigned without one. */
export function signShadowPlan(plan: ShadowPlan, key: KeyObject | undefined): ShadowPlan {
  const bare: ShadowPlan = { format: plan.format, name: plan.name, version: plan.version, percent: plan.percent, since: plan.since };
  if (key === undefined) return { ...bare, keyId: null, signature: null };
  return { ...bare, keyId: publicKeyId(key), signature: sign(null, planStatement(bare), key).toString('base64') };
}

/**
 * Checks a shadow plan as a stage change is checked: returns the signing key id, or
 * undefined for an unsigned plan. ARTIFACT_SIGNATURE_INVALID when it names an untrusted
 * key or does not verify (the plan was edited in the bucket without the key: another
 * version, a larger share); ARTIFACT_UNSIGNED when signatures are required and it has none.
 */
export function verifyShadowPlan(plan: ShadowPlan, trusted: readonly KeyObject[], required: boolean): string | undefined {
  const label = `shadow plan ${plan.name}@${plan.version} (${plan.percent} %)`;
  if (plan.signature == null || plan.keyId == null) {
    if (required) throw new ArteriaError('ARTIFACT_UNSIGNED', `${label} is not signed, and signatures are required (arteria algorithm shadow --key)`);
    return undefined;
  }
  const key = trusted.find((k) => publicKeyId(k) === plan.keyId);
  if (!key) {
    if (!required && trusted.length === 0) return undefined;
    throw new ArteriaError('ARTIFACT_SIGNATURE_INVALID', `${label} is signed by key ${plan.keyId}, which is not trusted here`);
  }
  if (!verify(null, planStatement(plan), key, Buffer.from(plan.signature, 'base64'))) {
    throw new ArteriaError('ARTIFACT_SIGNATURE_INVALID', `${label}: its signature does not verify (the plan changed after it was signed)`);
  }
  return plan.keyId;
}
