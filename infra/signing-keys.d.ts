export function signingKeyParameter(stage: string): string;
