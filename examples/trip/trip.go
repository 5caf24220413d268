// Package trip is a second saga on streamsaga, written only against the
// public API of package saga: a trip is booked in four steps — reserve the
// flight's seats, book the hotel, rent a car, charge the card — and
// cancelled in reverse when one of them fails.
//
// Each step shows one kind of effect: seats are state shared by every saga
// (saga.Take on a shared hash, applied once behind a barrier); the hotel
// and the card processor are systems outside the saga's writes (checked
// steps, called with the saga's idempotency key); the car rental keeps its
// record in the saga itself (saga.Set, written with the transition).
package trip

import (
	"context"
	"errors"

	"github.com/streamsaga/streamsaga/saga"
)

// Trip is the saga's context.
type Trip struct {
	Traveller  string `json:"traveller"`
	Flight     string `json:"flight"`
	Seats      int64  `json:"seats"`
	Hotel      string `json:"hotel"`
	Car        bool   `json:"car"`
	PriceCents int64  `json:"price_cents"`
}

// Seats of each flight: free, held by trips in progress, sold.
var (
	seatsFree = saga.Shared("airline", "free")
	seatsHeld = saga.Shared("airline", "held")
	seatsSold = saga.Shared("airline", "sold")
	carsOut   = saga.InPartition("cars")
)

// Agency runs the trip saga's operations against its partners.
type Agency struct {
	Hotels *External // a hotel booking API
	Cards  *External // a card processor
}

// Saga declares TRIP_SAGA.
func (a *Agency) Saga() *saga.Saga[Trip] {
	return saga.Define("TRIP_SAGA",
		saga.Step("reserveFlight", "flights", a.reserveFlight, a.releaseFlight).Finally(a.ticket),
		saga.Step("bookHotel", "hotels", a.bookHotel, a.cancelHotel).Checked(),
		saga.Step("rentCar", "cars", a.rentCar, a.returnCar),
		saga.Step("chargeCard", "cards", a.charge, a.refund).Checked(),
	).Ends("trip.booked", "trip.cancelled").Validate(func(t *Trip) error {
		if t.Traveller == "" || t.Flight == "" || t.Seats < 1 {
			return errors.New("a trip needs a traveller, a flight and seats")
		}
		return nil
	})
}

func (a *Agency) reserveFlight(_ context.Context, c *saga.Call[Trip]) (saga.Outcome, error) {
	t := c.Data
	return saga.OK(map[string]any{"flight": t.Flight, "seats": t.Seats},
		saga.Take(seatsFree, t.Flight, t.Seats, "flight "+t.Flight+" is full"),
		saga.HIncrBy(seatsHeld, t.Flight, t.Seats)), nil
}

func (a *Agency) releaseFlight(_ context.Context, c *saga.Call[Trip]) (saga.Outcome, error) {
	t := c.Data
	return saga.OK(nil, saga.HIncrBy(seatsFree, t.Flight, t.Seats), saga.HIncrBy(seatsHeld, t.Flight, -t.Seats)), nil
}

// ticket makes the held seats sold once the trip is booked.
func (a *Agency) ticket(_ context.Context, c *saga.Call[Trip]) (saga.Outcome, error) {
	t := c.Data
	return saga.OK(nil, saga.HIncrBy(seatsHeld, t.Flight, -t.Seats), saga.HIncrBy(seatsSold, t.Flight, t.Seats)), nil
}

func (a *Agency) bookHotel(ctx context.Context, c *saga.Call[Trip]) (saga.Outcome, error) {
	booked, err := a.Hotels.Book(ctx, c.IdempotencyKey, c.Data.Hotel)
	if err != nil || !booked {
		return saga.Fail("no room at " + c.Data.Hotel), err
	}
	return saga.OK(map[string]any{"hotel": c.Data.Hotel}), nil
}

func (a *Agency) cancelHotel(ctx context.Context, c *saga.Call[Trip]) (saga.Outcome, error) {
	return saga.OK(nil), a.Hotels.Cancel(ctx, c.IdempotencyKey)
}

func (a *Agency) rentCar(_ context.Context, c *saga.Call[Trip]) (saga.Outcome, error) {
	if !c.Data.Car {
		return saga.OK(nil), nil
	}
	return saga.OK(map[string]any{"car": "rented"}, saga.Set("car", "rented"), saga.HIncrBy(carsOut, "out", 1)), nil
}

// returnCar applies only when rentCar did (the engine skips a compensation's
// writes for a step that never completed).
func (a *Agency) returnCar(_ context.Context, c *saga.Call[Trip]) (saga.Outcome, error) {
	if !c.Data.Car {
		return saga.OK(nil), nil
	}
	return saga.OK(nil, saga.Set("car", "returned"), saga.HIncrBy(carsOut, "out", -1)), nil
}

func (a *Agency) charge(ctx context.Context, c *saga.Call[Trip]) (saga.Outcome, error) {
	ok, err := a.Cards.Book(ctx, c.IdempotencyKey, c.Data.Traveller)
	if err != nil || !ok {
		return saga.Fail("card declined for " + c.Data.Traveller), err
	}
	return saga.OK(map[string]any{"charged_cents": c.Data.PriceCents}), nil
}

func (a *Agency) refund(ctx context.Context, c *saga.Call[Trip]) (saga.Outcome, error) {
	return saga.OK(nil), a.Cards.Cancel(ctx, c.IdempotencyKey)
}
