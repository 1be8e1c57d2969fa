/**
 * Whether a run's pixels may carry burned-in annotation (a patient's name in the image) that
 * de-identification must mask or refuse. Burned In Annotation (0028,0301) YES says so. A
 * Secondary Capture (a screen or video capture: the lab's monitor shows the patient's name)
 * that does not say NO may, too: PS3.3 leaves the attribute optional there, and an absent one
 * means unknown, not none.
 */
export function mayHaveBurnedInAnnotation(burnedInAnnotation: string | undefined, sopClassUid: string | undefined): boolean {
  const said = (burnedInAnnotation ?? '').trim().toUpperCase();
  if (said === 'YES') return true;
  return said !== 'NO' && isSecondaryCapture(sopClassUid);
}

/** Secondary Capture Image Storage and its multi-frame classes (1.2.840.10008.5.1.4.1.1.7 and .7.x). */
function isSecondaryCapture(sopClassUid: string | undefined): boolean {
  const uid = (sopClassUid ?? '').replace(/\0/g, '').trim();
  return uid === '1.2.840.10008.5.1.4.1.1.7' || uid.startsWith('1.2.840.10008.5.1.4.1.1.7.');
}
