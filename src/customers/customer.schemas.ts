import { Type } from 'typebox';
import { NullableString, Timestamp, Uuid } from '../http/schemas.ts';

const ip = Type.Union([Type.String({ format: 'ipv4' }), Type.String({ format: 'ipv6' }), Type.Null()]);
export const Metadata = Type.Record(Type.String({ maxLength: 40 }), Type.String({ maxLength: 500 }), {
  maxProperties: 50, description: 'String keys (1 to 40 characters) to string values',
  propertyNames: { minLength: 1, maxLength: 40 },
});

export const customerWritable = {
  externalId: NullableString({ minLength: 1, maxLength: 200, description: "The platform's own id for the customer: unique among living customers" }),
  salutation: NullableString({ maxLength: 50 }),
  firstName: NullableString({ maxLength: 200 }),
  lastName: NullableString({ maxLength: 200 }),
  displayName: NullableString({ maxLength: 200 }),
  email: NullableString({ format: 'email', maxLength: 320 }),
  organization: NullableString({ maxLength: 200 }),
  tin: NullableString({ maxLength: 50 }),
  lastLoginSuccessIp: ip,
  lastLoginFailureIp: ip,
  sdkRegisterIp: ip,
  metadata: Metadata,
  legalHold: Type.Boolean(),
};

const optional = Object.fromEntries(Object.entries(customerWritable).map(([k, v]) => [k, Type.Optional(v)]));

export const CustomerCreate = Type.Object(optional, { additionalProperties: false });
export const CustomerPatch = Type.Object(optional, { additionalProperties: false, minProperties: 1 });

export const CustomerSchema = Type.Object({
  id: Uuid,
  ...customerWritable,
  profilePhotoUrl: Type.Union([Type.String(), Type.Null()]),
  createdAt: Timestamp,
  updatedAt: Timestamp,
}, { additionalProperties: false });

export const ActivitySchema = Type.Object({
  id: Uuid,
  customerId: Uuid,
  type: Type.String(),
  recordId: Type.Union([Uuid, Type.Null()]),
  details: Type.Record(Type.String(), Type.Unknown()),
  createdAt: Timestamp,
});
