/**
 * The inferred type of a loose zod schema without the `[key: string]: unknown` index signatures
 * that `z.looseObject` adds: parsed values keep unknown keys at run time, but code only sees the
 * keys the spec defines, so a misspelt field is a compile error. Records with typed values
 * (annotations, sysctl) keep their index signature.
 */
export type Known<T> = T extends readonly (infer U)[]
  ? Known<U>[]
  : T extends object
    ? { [K in keyof T as string extends K ? (unknown extends T[K] ? never : K) : K]: Known<T[K]> }
    : T;
