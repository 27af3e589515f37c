import { MemberService } from '../auth/index.ts'
import type { NodeWiring } from './parts.ts'

/**
 * Members (SPEC §8): enrolment and removal over the members book, the act gate and the
 * authority. When the members change, discovery and the registry hear the new counts at
 * once. Who else reacts to a removal subscribes with `onRemoved` (sessions in the root,
 * room memberships here).
 */
export async function startMembers({ parts, logger }: NodeWiring): Promise<MemberService> {
  const service = new MemberService({
    book: parts.get('members'),
    acts: () => parts.get('gate'),
    authority: () => parts.get('authority'),
    audit: parts.get('audit'),
    logger,
  })
  const unsubscribe = service.onChanged(() => {
    parts.find('discovery')?.setContent({})
    void parts.find('heartbeat')?.beat()
  })
  parts.onStop(unsubscribe)
  // A removed member's room memberships end by entries this mesh seals (every replica then refuses its writes).
  parts.onStop(service.onRemoved(async (did) => void (await parts.get('rooms').endMemberships(did))))
  // A rotation while the node was down left credentials of the old key only.
  await service.reissue()
  return parts.set('memberService', service)
}
