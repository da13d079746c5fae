/** Prisma's known request errors carry a code; P2002 is a unique constraint, P2025 a missing row. */
export function prismaCode (err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string' && err.code.startsWith('P')) {
    return err.code
  }
  return undefined
}

export function isUniqueViolation (err: unknown): boolean {
  return prismaCode(err) === 'P2002'
}
