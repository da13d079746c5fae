import type { Config } from '../lib/config.js'
import { createConsoleSender } from './console-sender.js'
import type { MessageSender, SenderLogger } from './message-sender.js'
import type { TwilioSenderOptions } from './twilio-sender.js'

export type SenderConfig = Pick<Config,
  | 'SMS_PROVIDER'
  | 'TWILIO_ACCOUNT_SID'
  | 'TWILIO_AUTH_TOKEN'
  | 'TWILIO_FROM_NUMBER'
  | 'TWILIO_MESSAGING_SERVICE_SID'
  | 'TWILIO_BASE_URL'
  | 'TWILIO_TIMEOUT_MS'
>

/** The provider named by SMS_PROVIDER; the configuration has already refused console in production. */
export function createSender (config: SenderConfig, logger: SenderLogger): MessageSender {
  if (config.SMS_PROVIDER === 'console') {
    logger.warn({ provider: 'console' }, 'SMS_PROVIDER=console: codes are written to the log and nothing is sent; development only')
    return createConsoleSender(logger)
  }
  const { TWILIO_ACCOUNT_SID: accountSid, TWILIO_AUTH_TOKEN: authToken } = config
  // parseConfig guarantees these; the check keeps a hand-built config from failing later, at the first login.
  if (accountSid === undefined || authToken === undefined) {
    throw new Error('SMS_PROVIDER=twilio needs TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN')
  }
  // Checked here too, not only when the SDK is loaded at the first message: a bad setting stops the start.
  if (config.TWILIO_FROM_NUMBER === undefined && config.TWILIO_MESSAGING_SERVICE_SID === undefined) {
    throw new Error('Twilio sender needs a from number or a messaging service SID')
  }
  return deferredTwilioSender({
    accountSid,
    authToken,
    timeoutMs: config.TWILIO_TIMEOUT_MS,
    logger,
    ...(config.TWILIO_FROM_NUMBER !== undefined ? { fromNumber: config.TWILIO_FROM_NUMBER } : {}),
    ...(config.TWILIO_MESSAGING_SERVICE_SID !== undefined ? { messagingServiceSid: config.TWILIO_MESSAGING_SERVICE_SID } : {}),
    ...(config.TWILIO_BASE_URL !== undefined ? { baseUrl: config.TWILIO_BASE_URL } : {})
  })
}

/**
 * The Twilio SDK (with axios) is the heaviest module of the service: loading it took about a
 * tenth of the start (issue 6). It is loaded at the first message instead, once per process.
 */
function deferredTwilioSender (options: TwilioSenderOptions): MessageSender {
  let loaded: Promise<MessageSender> | undefined
  const sender = async () => await (loaded ??= import('./twilio-sender.js').then(({ createTwilioSender }) => createTwilioSender(options)))
  return {
    provider: 'twilio',
    async sendSms (to, body, sendOptions) { return await (await sender()).sendSms(to, body, sendOptions) },
    async call (to, speech, sendOptions) { return await (await sender()).call(to, speech, sendOptions) }
  }
}
